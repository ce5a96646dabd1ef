"""The ICD vocabularies (ICD-9-CM and ICD-10-CM/PCS hierarchies and titles), how a code is
written (dots, categories, CAML's procedure format) and the shipped code lists. Below
the readers: knows nothing of MIMIC's tables."""
