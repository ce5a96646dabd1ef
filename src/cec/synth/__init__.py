"""A synthetic MIMIC-III: same tables, columns and quirks, with code-coupled notes.

MIMIC-III cannot be redistributed, yet every stage of the workflow must run end to end on
a laptop and in CI. The generator writes tables a researcher could not tell apart from
v1.4 by their shape, with notes whose wording implies their codes the way coders see it.
"""
