"""Snakemake adapter: rule note_fingerprints -> the privacy guard's one-way hash set."""

import logging

from snakemake.iocontainers import Snakemake

from cec.concepts.guard import NoteShingleGuard
from cec.plumbing.io import read_jsonl
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]

with job_log(snakemake.log[0]):
    texts = (rec["text"] for path in snakemake.input for rec in read_jsonl(path))
    guard = NoteShingleGuard.from_texts(texts)
    guard.save(snakemake.output[0])
    logging.info("%d distinct 8-word shingle hashes", len(guard))
