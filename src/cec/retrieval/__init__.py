"""Candidate retrieval for full code sets (thousands of codes): per note, the K codes of
the full set most likely to apply, so that the concept stages score only those.
Retrievers rank every code of a set; `cec.retrieval.recall` measures what the top K keep;
`cec.retrieval.run` is rule retrieve_candidates. The concept and label stages do not yet
read the candidates (issue 25)."""
