"""Readers of the raw MIMIC tables (CSV or gzipped CSV): rows as typed values, every
error naming the file, row and field but never a note's text."""
