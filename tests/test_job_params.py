"""Each job's params: exactly what its outputs read, as the keywords of what the adapter
calls (see cec.job_params)."""

from __future__ import annotations

import pytest

from cec import job_params

STAGE2 = {
    "device": "auto",
    "lora": {"r": 32, "lr": 0.001},
    "steps": {"default": 8, "gemma_7b": 500},
    "trainset": {"k": 5, "m": 2, "false_per_true": 1.0},
    "methods": ["direct_zeroshot", "cec_k6"],
    "seeds": [13, 14],
    "max_tokens": 4096,
    "row_tokens": 320,
}


def test_steps_are_resolved_per_row() -> None:
    assert job_params.stage2_training(STAGE2, "gemma_7b")["lora"]["steps"] == 500
    assert job_params.stage2_training(STAGE2, "llama3_8b")["lora"]["steps"] == 8


def test_training_and_prediction_params_leave_out_seeds_and_methods() -> None:
    train = job_params.stage2_training(STAGE2, "llama3_8b")
    predict = job_params.stage2_prediction({"stage2": STAGE2}, "mimic3_50")
    assert train == {"lora": {"r": 32, "lr": 0.001, "steps": 8}, "device": "auto"}
    assert predict == {
        "train_k": 5, "m": 2, "max_tokens": 4096, "row_tokens": 320, "device": "auto"
    }  # fmt: skip


def test_only_a_retrieved_coded_dataset_is_reranked() -> None:
    """A 50-code set keeps its params (no re-run of finished jobs); a full set that
    `retrieval` lists gets its candidate count and reads unlisted codes as 0."""
    config = {"stage2": STAGE2, "retrieval": {"datasets": ["full"], "rerank": 30}}
    assert job_params.rerank(config, "full") == 30
    assert job_params.rerank(config, "mimic3_50") is None
    assert job_params.stage2_prediction(config, "full")["rerank"] == 30
    assert "rerank" not in job_params.stage2_prediction(config, "mimic3_50")
    assert job_params.unlisted(config, "full") == 0.0
    assert job_params.unlisted(config, "mimic3_50") is None


def test_concept_generation_does_not_read_gamma() -> None:
    config = {
        "concepts": {
            "mode": "replay",
            "batch": {"min": 5, "max": 7},
            "max_parse_retries": 2,
            "api": {"model": "gpt-4-0613"},
            "gamma": 0.83,
            "recordings": "x/{dataset}",
        }
    }
    full = {"concepts": "derived", "icd_version": 10}
    config["datasets"] = {"mimic3_50": {"codes": "x"}, "full": full}
    params = job_params.generate_concepts(config, "mimic3_50")
    derived = job_params.generate_concepts(config, "full")
    assert derived == {"source": "derived", "icd_version": 10}  # no API setting
    assert "gamma" not in str(params)
    assert params["api"] == {"model": "gpt-4-0613"}
    assert params["generation"] == {
        "max_batch": 7, "max_parse_retries": 2, "min_batch": 5, "mode": "replay"
    }  # fmt: skip


def test_the_lora_params_hold_only_lora_settings_fields() -> None:
    """A key the settings object does not take would fail the job at `LoraSettings(**)`."""
    from cec.llm.lora import LoraSettings

    stage = {**STAGE2, "lora": {"r": 8, "targets": ["q_proj"], "qlora": True}}
    lora = job_params.stage2_training(stage, "llama3_8b")["lora"]
    settings = LoraSettings(**lora, seed=14)
    assert (settings.r, settings.targets, settings.qlora, settings.steps) == (
        8, ("q_proj",), True, 8
    )  # fmt: skip


def test_each_table_reads_its_own_values() -> None:
    every = {key: key for keys in job_params.TABLE_KEYS.values() for key in keys}
    assert "decision_rule_first" not in job_params.table("table4_auc", every)
    assert "ablation" not in job_params.table("table3_concepts", every)
    assert "ablation" not in job_params.table("table1_main", every)
    with pytest.raises(ValueError, match="unknown table"):
        job_params.table("table9", every)
