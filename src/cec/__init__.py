"""Concept-Enhanced ICD Coding (CEC): the library behind the Snakemake workflow."""

__version__ = "0.1.0"
