"""Concept sets (paper Section 3.2): LLM-generated parent and leaf concepts per ICD code."""
