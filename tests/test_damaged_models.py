"""`cec code` on damaged workflow outputs: every cut, garbled, missing or wrong file is one
line naming the file, what is wrong and the Snakemake target that makes it again; and
`--device cuda` on a machine without a GPU says so before anything loads.

The results folder is built as the workflow would leave it (a tiny random Llama, two
LoRA adapters with their provenance, the concept files), once per module, then copied
and damaged one file at a time.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cec.cli import main
from cec.plumbing.artifacts import artifact, write_code_rows, write_concepts
from cec.plumbing.errors import InputError
from tests.conftest import REPO
from tests.tiny_workflow import CONFIG

DATASET, BACKBONE, SEED = "rare50", "tiny_llama", 13  # tests/config/tiny.yaml: stage2.seeds[0]
MODEL = f"models/{BACKBONE}"
CONCEPT = f"adapters/{DATASET}/{BACKBONE}/concept"
LABEL = f"adapters/{DATASET}/{BACKBONE}/label_cec/seed{SEED}"
CONCEPTS = f"concepts/{DATASET}/concepts.tsv"
CODE_CONCEPTS = f"concepts/{DATASET}/code_concepts.json"
CODES = f"data/{DATASET}/codes.tsv"


def _adapter(model_dir: Path, out: Path, template: str) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(r=2, lora_alpha=2, target_modules=["q_proj", "v_proj"])
    get_peft_model(model, config).save_pretrained(out)
    provenance = {"dtype": "float32", "template": template, "answer_token_ids": [3, 4]}
    (out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder with everything `cec code` reads for (rare50, tiny_llama)."""
    from cec.llm.tiny import DEFAULT_TEXTS, build_tiny_model

    results = tmp_path_factory.mktemp("built") / "results"
    model = build_tiny_model("llama", artifact("model", results, backbone=BACKBONE), DEFAULT_TEXTS)
    _adapter(model, results / CONCEPT, "concept_question_v1.jinja2")
    _adapter(model, results / LABEL, "label_question_v1.jinja2")
    write_code_rows(
        results / CODES,
        [
            dict(code="584.9", kind="diag", description="Acute kidney failure", parent="584",
                 parent_description="Acute kidney failure"),
            dict(code="428.0", kind="diag", description="Heart failure", parent="428",
                 parent_description="Heart failure"),
        ],
    )  # fmt: skip
    write_concepts(
        results / CONCEPTS,
        [
            ("C0001", "leaf", "584.9", "rising creatinine"),
            ("C0002", "parent", "584", "kidney injury"),
            ("C0003", "leaf", "428.0", "leg edema"),
            ("C0004", "parent", "428", "reduced ejection fraction"),
        ],
    )
    mapping = {
        "584.9": {"leaf": ["C0001"], "parent": ["C0002"]},
        "428.0": {"leaf": ["C0003"], "parent": ["C0004"]},
    }
    (results / CODE_CONCEPTS).write_text(json.dumps(mapping, indent=2) + "\n")
    return results


@pytest.fixture
def results(built: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "results"
    shutil.copytree(built, copy)
    return copy


def _code(results: Path, tmp_path: Path, *extra: str) -> list[str]:
    note = tmp_path / "note.txt"
    note.write_text("Admission Date: creatinine kidney failure heart failure\n")
    return [
        "code", str(note), "--dataset", DATASET, "--backbone", BACKBONE,
        "--configfile", str(REPO / CONFIG), "--results", str(results), *extra,
    ]  # fmt: skip


def test_the_intact_folder_codes_the_note(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The world the damage cases break is whole: `cec code` runs on it."""
    assert main(_code(results, tmp_path, "--all", "--device", "cpu")) == 0
    out = capsys.readouterr().out
    assert "584.9" in out and "428.0" in out


# --- the damages ---

Damage = Callable[[Path], None]


def cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def cut_at_line_end(path: Path) -> None:
    """A table that lost its last row whole: valid on its own, short of what others name."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))


def garble(path: Path) -> None:
    path.write_bytes(random.Random(path.name).randbytes(max(64, path.stat().st_size)))


def remove(path: Path) -> None:
    path.unlink()


def bad_json(path: Path) -> None:
    path.write_text('{"cut": [1, 2', encoding="utf-8")


def json_array(path: Path) -> None:
    path.write_text("[1, 2, 3]\n", encoding="utf-8")


def provenance_without_dtype(path: Path) -> None:
    path.write_text(json.dumps({"template": "concept_question_v1.jinja2"}), encoding="utf-8")


def adapter_for_other_modules(path: Path) -> None:
    """A config the checks pass (valid JSON, a peft_type) that PEFT cannot apply: the net
    around the library's own loading names the folder."""
    config = json.loads(path.read_text(encoding="utf-8"))
    config["target_modules"] = ["no_such_module"]
    path.write_text(json.dumps(config), encoding="utf-8")


GARBLED = "not UTF-8|binary, not text"  # random bytes: which comes first is chance
# (file under results/, damage, the message's words (a regex), the target to rebuild)
CASES: list[tuple[str, Damage, str, str]] = [
    (f"{MODEL}/model.safetensors", cut, "cut", MODEL),
    (f"{MODEL}/model.safetensors", garble, "not a whole safetensors file", MODEL),
    (f"{MODEL}/model.safetensors", remove, "missing", MODEL),
    (f"{MODEL}/config.json", cut, "not valid JSON", MODEL),
    (f"{MODEL}/config.json", json_array, "expected an object at the top, found an array", MODEL),
    (f"{MODEL}/config.json", remove, "missing", MODEL),
    (f"{MODEL}/tokenizer.json", cut, "not valid JSON", MODEL),
    (f"{MODEL}/tokenizer.json", garble, GARBLED, MODEL),
    (f"{MODEL}/tokenizer.json", remove, "missing: the model's tokenizer", MODEL),
    (f"{MODEL}/tokenizer.json", json_array, "expected an object", MODEL),
    (f"{MODEL}/tokenizer_config.json", bad_json, "not valid JSON", MODEL),
    (f"{CONCEPT}/adapter_model.safetensors", cut, "cut", CONCEPT),
    (f"{CONCEPT}/adapter_model.safetensors", garble, "not a whole safetensors file", CONCEPT),
    (f"{CONCEPT}/adapter_model.safetensors", remove, "missing", CONCEPT),
    (f"{LABEL}/adapter_model.safetensors", cut, "cut", LABEL),
    (f"{LABEL}/adapter_config.json", cut, "not valid JSON", LABEL),
    (f"{LABEL}/adapter_config.json", garble, GARBLED, LABEL),
    (f"{LABEL}/adapter_config.json", remove, "missing", LABEL),
    (f"{LABEL}/adapter_config.json", bad_json, "not valid JSON", LABEL),
    (f"{LABEL}/adapter_config.json", json_array, "expected an object", LABEL),
    (f"{LABEL}/adapter_config.json", adapter_for_other_modules, "cannot be loaded", LABEL),
    (f"{CONCEPT}/provenance.json", cut, "not valid JSON", CONCEPT),
    (f"{CONCEPT}/provenance.json", garble, GARBLED, CONCEPT),
    (f"{CONCEPT}/provenance.json", bad_json, "not valid JSON", CONCEPT),
    (f"{CONCEPT}/provenance.json", json_array, "expected an object", CONCEPT),
    (f"{CONCEPT}/provenance.json", provenance_without_dtype, "no 'dtype'", CONCEPT),
    (f"{CONCEPT}/provenance.json", remove, "not built yet", CONCEPT),
    (CODE_CONCEPTS, cut, "not valid JSON", CODE_CONCEPTS),
    (CODE_CONCEPTS, garble, GARBLED, CODE_CONCEPTS),
    (CODE_CONCEPTS, bad_json, "not valid JSON", CODE_CONCEPTS),
    (CODE_CONCEPTS, json_array, "expected an object", CODE_CONCEPTS),
    (CONCEPTS, cut_at_line_end, "has no concept C0004", CONCEPTS),
    (CONCEPTS, cut, "cut", CONCEPTS),
    (CONCEPTS, garble, GARBLED, CONCEPTS),
    (CODES, cut_at_line_end, "lacks code 428.0", CODES),
]


def _case_id(case: tuple[str, Damage, str, str]) -> str:
    return f"{case[0].rsplit('/', 1)[-1]}-{case[1].__name__}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_a_damaged_file_is_named_with_its_rebuild_target(
    case: tuple[str, Damage, str, str],
    results: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name, damage, words, target = case
    path = results / name
    damage(path)
    assert main(_code(results, tmp_path, "--device", "cpu")) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    err = [line for line in captured.err.splitlines() if "cec code: error:" in line]
    assert len(err) == 1 and "Traceback" not in captured.err, captured.err
    line = err[0]
    named = path if words != "cannot be loaded" else path.parent  # the net names the folder
    assert f"file {named}" in line, line
    assert re.search(words, line), line
    assert f"snakemake --cores 2 --force results/{target}" in line, line


def test_a_downloaded_backbone_is_not_sent_to_snakemake(tmp_path: Path) -> None:
    """A folder of the user's own (source hf) that no rule builds: the message says to
    download it again, even where its path looks like the workflow's models/ folder."""
    from cec.llm.backbones import Backbone
    from cec.llm.loading import check_model_dir, model_rebuild
    from cec.llm.tiny import DEFAULT_TEXTS, build_tiny_model

    folder = build_tiny_model("llama", tmp_path / "models" / "llama3", DEFAULT_TEXTS)
    cut(folder / "model.safetensors")
    backbone = Backbone(name="llama3", source="hf", path=str(folder))
    with pytest.raises(InputError) as err:
        check_model_dir(folder, model_rebuild(backbone))
    message = str(err.value)
    assert "model.safetensors" in message and "download its files again" in message
    assert "snakemake" not in message


# --- cause 7: --device cuda without a GPU ---


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.skipif(_has_cuda(), reason="this machine has a CUDA device")
def test_device_cuda_without_a_gpu_says_so_before_loading_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # no results folder at all: only a device check that comes first can answer
    assert main(_code(tmp_path / "no-results", tmp_path, "--device", "cuda")) == 2
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if "cec code: error:" in line]
    assert len(err) == 1 and "Traceback" not in captured.err, captured.err
    assert "--device cuda: this machine has no CUDA device" in err[0]
    assert "--device cpu" in err[0]


@pytest.mark.skipif(_has_cuda(), reason="this machine has a CUDA device")
def test_a_stage_asked_for_cuda_without_a_gpu_gets_an_input_error() -> None:
    """The workflow's stages choose their device by the same rule (stage1.device)."""
    from cec.llm.loading import choose_device

    with pytest.raises(InputError, match="no CUDA device"):
        choose_device("cuda")
    assert choose_device("auto") == "cpu"
