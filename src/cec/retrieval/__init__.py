"""Candidate retrieval for full code sets (thousands of codes): per note, the K codes of
the full set most likely to apply, so that the concept stages score only those.
Retrievers rank every code of a set; `cec.retrieval.recall` measures what the top K keep.
Not yet wired into the workflow (issue 25)."""
