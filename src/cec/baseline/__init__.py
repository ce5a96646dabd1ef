"""Baselines reported beside the LLM method on full code sets (thousands of codes):
`cec.baseline.bow` is the classic bag-of-words one (TF-IDF, one logistic regression per
code), so that a table says what the concepts add over a reader of words alone. Its
predictions have the stage-2 file format, so the evaluation reads them like a method's."""
