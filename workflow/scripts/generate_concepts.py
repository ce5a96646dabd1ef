"""Snakemake adapter: rule generate_concepts -> cec.concepts.generate."""

import logging
from pathlib import Path

from snakemake.iocontainers import Snakemake

from cec.concepts.client import ApiSettings
from cec.concepts.derived import derive_concepts, icd10cm_codes
from cec.concepts.generate import GenerationSettings, generate_concepts, write_raw
from cec.concepts.guard import NoteShingleGuard
from cec.concepts.prompts import code_rows
from cec.plumbing.artifacts import read_code_table
from cec.plumbing.logs import job_log

# Snakemake's typed handle: the object its script preamble binds (see docs/layout.md)
snakemake: Snakemake = globals()["snakemake"]


def derived(params: dict) -> None:
    """Concepts from public ICD text, no API (`cec.concepts.derived`)."""
    table = read_code_table(snakemake.input.codes)
    rows = code_rows(table)
    result = derive_concepts(rows, icd10cm_codes(table, params["icd_version"]))
    write_raw(result, rows, Path(snakemake.output.concepts), Path(snakemake.output.exchanges))


def from_llm(params: dict) -> None:
    """The Fig. 6/7 prompts: replayed, recorded or refreshed (`cec.concepts.generate`)."""
    settings = GenerationSettings(
        **params["generation"],
        recordings=Path(snakemake.params.recordings),
        templates={
            "parent": snakemake.input.parent_template,
            "leaf": snakemake.input.leaf_template,
        },
    )
    rows = code_rows(read_code_table(snakemake.input.codes))
    result = generate_concepts(
        rows,
        settings,
        ApiSettings.from_config(params["api"]),
        guard=NoteShingleGuard.load(snakemake.input.guard),
    )
    write_raw(result, rows, Path(snakemake.output.concepts), Path(snakemake.output.exchanges))
    logging.info(
        "%d parent and %d leaf concept lists (%s mode; %d API requests, %d tokens)",
        len(result.parent),
        len(result.leaf),
        settings.mode,
        result.api_requests,
        result.api_tokens,
    )


with job_log(snakemake.log[0]):
    params = snakemake.params.settings
    (derived if params.get("source") == "derived" else from_llm)(params)
