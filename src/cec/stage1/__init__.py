"""Stage 1 (paper Section 3.3): a LoRA-tuned LLM answers 'is this concept relevant?'."""
