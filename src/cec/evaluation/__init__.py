"""Evaluation (Section 4): metrics as the KEPT / caml-mimic scripts define them, tables."""
