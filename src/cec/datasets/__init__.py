"""Dataset building: from the MIMIC readers' rows to the split JSONL files, code tables
and data reports every later stage reads (MIMIC-III and MIMIC-IV sources, splits, one
assembly)."""
