"""Local causal language models: loading, tiny test models, GGUF conversion, prompts."""
