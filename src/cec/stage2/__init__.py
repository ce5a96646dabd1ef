"""Stage 2 (Section 3.4): from note and concept answers to ICD code probabilities."""
