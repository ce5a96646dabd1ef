"""A faulty config is reported in the user's terms, naming its file, before any job is
planned: by `cec.plumbing.config` for `cec code` and the benchmarks, and by the Snakefile for a run.

Every numeric value of the schema is driven out of its range here (NaN, infinities, the
first value past each bound), so a bound missing from the config schema fails a test.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cec.plumbing.config import SCHEMA, check_config, load_config, read_config_file, with_base
from cec.plumbing.errors import InputError
from tests.conftest import REPO
from tests.tiny_workflow import copy_workflow, snakemake

SCHEMA_RULES = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
TINY = REPO / "tests" / "config" / "tiny.yaml"


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("text", "expect", "row"),
    [
        ("a: [1\n", "not valid YAML", 2),
        ("a: !!python/object/apply:os.system ['true']\n", "no tags", 1),
        ("{}\n", "the config is empty", None),
        ("", "the config is empty", None),
        ("- a\n- b\n", "not a list", None),
        ("\tdatasets: 1\n", "not valid YAML", 1),
    ],
)
def test_a_faulty_config_file_is_named(
    tmp_path: Path, text: str, expect: str, row: int | None
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        read_config_file(path)
    assert info.value.file == str(path) and expect in info.value.message
    assert info.value.row == row


def test_a_folder_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder, not a config file"):
        load_config(tmp_path)


def test_a_bom_and_crlf_config_reads(tmp_path: Path) -> None:
    text = TINY.read_text(encoding="utf-8").replace("\n", "\r\n")
    path = tmp_path / "tiny.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert read_config_file(path) == yaml.safe_load(TINY.read_text(encoding="utf-8"))


def test_binary_config_is_refused_without_echo(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"datasets: \x00\x01SECRET\n")
    with pytest.raises(InputError) as info:
        read_config_file(path)
    assert "NUL" in str(info.value) and "SECRET" not in str(info.value)


@pytest.mark.parametrize(
    ("base", "expect", "blamed"),
    [
        ("[a, b]", "not a list", "overlay"),
        ("3", "not a number", "overlay"),
        ("missing.yaml", "base config missing.yaml not found", "overlay"),
        ("broken.yaml", "not valid YAML", "base"),
        ("empty.yaml", "the config is empty", "base"),
    ],
)
def test_base_errors_name_the_file_at_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, base: str, expect: str, blamed: str
) -> None:
    monkeypatch.chdir(tmp_path)  # a base is a path from the working directory
    _write(tmp_path, "a: [\n", "broken.yaml")
    _write(tmp_path, "", "empty.yaml")
    overlay = _write(tmp_path, f"base: {base}\ndatasets: {{}}\n", "overlay.yaml")
    with pytest.raises(InputError) as info:
        with_base(read_config_file(overlay), overlay)
    assert expect in info.value.message
    if blamed == "overlay":
        assert info.value.file == str(overlay) and info.value.field == "base"
    else:
        assert info.value.file == base and f"the base config of {overlay}" in info.value.message


def _tiny() -> dict[str, Any]:
    return yaml.safe_load(TINY.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda c: c["stage1"].update(backbones=["tiny_lama"]), "stage1.backbones[0]"),
        (lambda c: c["stage2"].update(backbones=["x"]), "stage2.backbones[0]"),
        (lambda c: c["stage2"]["steps"].update(tiny_lama=3), "stage2.steps.tiny_lama"),
        (lambda c: c["stage2"].update(label_backbone={"tiny_llama": "big"}), "label_backbone"),
        (
            lambda c: c["stage2"].update(label_backbone={"tiny_llama": {"cec": "big"}}),
            "label_backbone.tiny_llama.cec",
        ),
        (lambda c: c["evaluation"].update(table4_backbone="llama3"), "table4_backbone"),
        (lambda c: c["evaluation"].update(paper_row={"llama3": "llama"}), "paper_row.llama3"),
    ],
)
def test_an_unknown_backbone_is_named(edit: Any, field: str) -> None:
    config = _tiny()
    check_config(copy.deepcopy(config), "tiny.yaml")  # the shipped one passes
    for shipped in ("mimic3.yaml", "mimic4.yaml", "config.yaml", "demo_mimic4.yaml"):
        load_config(REPO / "config" / shipped)  # and so do the paper's and the demos' configs
    edit(config)
    with pytest.raises(InputError, match="unknown backbone") as info:
        check_config(config, "tiny.yaml")
    assert field in str(info.value.field)


@pytest.mark.parametrize(
    ("stage", "key", "expect"),
    [
        ("stage1", "tiny_lama", "'tiny_lama' is not among stage1.backbones"),
        ("stage2", "mimic3_5O/tiny_llama", "unknown dataset 'mimic3_5O'"),
        ("stage2", "mimic3_50/other", "'other' is not among stage2.backbones"),
    ],
)
def test_a_lora_override_that_would_never_apply_is_named(stage: str, key: str, expect: str) -> None:
    config = _tiny()
    config[stage]["lora_overrides"] = {key: {"qlora": True}}
    with pytest.raises(InputError, match=expect) as info:
        check_config(config, "tiny.yaml")
    assert info.value.field == f"{stage}.lora_overrides.{key}"


def test_split_fractions_must_add_up() -> None:
    config = _tiny()
    config["datasets"]["mimic3_50"]["split_fractions"] = {"train": 0.9, "dev": 0.1, "test": 0.1}
    with pytest.raises(InputError, match="add up to 1.1"):
        check_config(config, "tiny.yaml")


# ---- every numeric value of the schema, out of range --------------------------------------


def _numeric_fields(schema: dict[str, Any], path: tuple[Any, ...] = ()) -> Iterator[Any]:
    """(path, subschema) of every number or integer the schema declares; a path step is a
    key, `0` for an array item, or a stand-in name for a free-form key."""
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind}
    if kinds & {"number", "integer"}:
        yield path, schema
    for name, sub in (schema.get("properties") or {}).items():
        yield from _numeric_fields(sub, (*path, name))
    for sub in (schema.get("patternProperties") or {}).values():
        yield from _numeric_fields(sub, (*path, "train"))  # llm_resources.{build,train,score}
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _numeric_fields(extra, (*path, _FREE_KEY.get(path[-1] if path else "", "x")))
    if isinstance(schema.get("items"), dict):
        yield from _numeric_fields(schema["items"], (*path, 0))


# the key that a free-form block of the tiny config really has
_FREE_KEY = {"datasets": "mimic3_50", "backbones": "tiny_llama", "steps": "default"}
FIELDS = list(_numeric_fields(SCHEMA_RULES))


def _bad_values(schema: dict[str, Any]) -> list[Any]:
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    step = 1 if "integer" in kinds and "number" not in kinds else 1e-9
    bad: list[Any] = [math.nan, math.inf, -math.inf]
    if "minimum" in schema:
        bad.append(schema["minimum"] - step)
    if "exclusiveMinimum" in schema:
        bad.append(schema["exclusiveMinimum"])
    if "maximum" in schema:
        bad.append(schema["maximum"] + step)
    return bad


def _set(config: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    node: Any = config
    for step, following in zip(path, path[1:], strict=False):
        if isinstance(node, list):
            node = node[step]
            continue
        if step not in node or node[step] is None:
            node[step] = [1, 1, 1] if following == 0 else {}
        node = node[step]
    if isinstance(node, list):
        node[path[-1]] = value
    else:
        node[path[-1]] = value


def test_the_schema_walk_finds_the_numbers() -> None:
    """The walk below covers the values users set most (a broken walk would test nothing)."""
    found = {".".join(str(s) for s in path) for path, _ in FIELDS}
    for expected in (
        "mimic.synthetic.admissions",
        "mimic.synthetic.top50_split.0",
        "datasets.mimic3_50.split_fractions.train",
        "concepts.gamma",
        "stage2.trainset.k",
        "stage2.seeds.0",
        "evaluation.bootstrap",
        "llm_resources.train.mem_mb",
        "stage1.steps.default",
    ):
        assert expected in found
    assert len(FIELDS) > 50


@pytest.mark.parametrize(
    ("path", "schema"), FIELDS, ids=[".".join(str(s) for s in path) for path, _ in FIELDS]
)
def test_every_numeric_config_value_is_bounded(
    tmp_path: Path, path: tuple[Any, ...], schema: dict[str, Any]
) -> None:
    shipped = _tiny()
    # a block the tiny config lacks, valid until the loop below breaks one value of it
    shipped["datasets"]["mimic3_50"]["literature_split_sizes"] = {"train": 9, "dev": 2, "test": 3}
    shipped["retrieval"] = {"datasets": ["rare50"], "ks": [5, 20], "choose_at": 20, "neighbours": 9}
    load_config(_write(tmp_path, yaml.safe_dump(shipped), "good.yaml"), SCHEMA)
    for value in _bad_values(schema):
        config = copy.deepcopy(shipped)
        _set(config, path, value)
        target = _write(tmp_path, yaml.safe_dump(config), "bad.yaml")
        with pytest.raises(InputError) as info:
            load_config(target, SCHEMA)
        where = ".".join(str(s) for s in path)
        text = str(info.value)
        assert where in text or f"{where.rsplit('.', 1)[0]}[" in text, (value, text)


# ---- the same through Snakemake, before any job is planned -----------------------------


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("wf"))


def _dry(workflow: Path, *args: str) -> tuple[int, str]:
    run = snakemake(["-n", *args], workflow)
    return run.returncode, run.stdout + run.stderr


@pytest.mark.integration
def test_snakemake_refuses_an_empty_config(workflow: Path) -> None:
    empty = _write(workflow, "{}\n", "empty.yaml")
    status, out = _dry(workflow, "all", "--configfile", str(empty))
    assert status != 0 and f"file {empty}: the config is empty" in out
    assert "synth_mimic" not in out  # the demo was not planned instead


@pytest.mark.integration
def test_snakemake_names_an_unknown_backbone(workflow: Path) -> None:
    text = (workflow / "config" / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("backbones: [smollm2]", "backbones: [smolm2]", 1)
    typo = _write(workflow, text, "t.yaml")
    status, out = _dry(workflow, "all", "--configfile", str(typo))
    assert status != 0 and "stage1.backbones[0]: unknown backbone 'smolm2'" in out
    assert "MissingInputException" not in out


@pytest.mark.integration
def test_snakemake_names_the_file_of_a_bad_base(workflow: Path) -> None:
    overlay = _write(workflow, "base: [config/config.yaml]\n", "overlay.yaml")
    status, out = _dry(workflow, "all", "--configfile", str(overlay))
    assert status != 0 and f"file {overlay}, field base: base must be the path" in out


@pytest.mark.integration
def test_config_override_applies_to_the_demo(workflow: Path) -> None:
    status, out = _dry(workflow, "all", "--config", "llm_threads=2")
    assert status == 0, out[-2000:]
    assert "synth_mimic" in out  # the demo config was loaded under the override


@pytest.mark.integration
def test_a_mistyped_target_is_named(workflow: Path) -> None:
    """Snakemake 9.15.0 crashed here with an AttributeError (upstream #3644)."""
    status, out = _dry(workflow, "results/tables/table2_ablaton.tex")
    assert status != 0
    assert "No rule to produce results/tables/table2_ablaton.tex" in out
    assert "AttributeError" not in out


def test_retrieval_names_configured_datasets_and_chooses_at_one_of_its_ks(
    tmp_path: Path,
) -> None:
    config = _tiny()
    config["retrieval"] = {"datasets": ["rare50", "mimic5_full"]}
    with pytest.raises(InputError, match=r"field retrieval.datasets\[1\]: unknown dataset"):
        load_config(_write(tmp_path, yaml.safe_dump(config), "a.yaml"), SCHEMA)
    config["retrieval"] = {"datasets": ["rare50"], "ks": [5, 20], "choose_at": 50}
    with pytest.raises(InputError, match=r"field retrieval.choose_at: 50 is not one of"):
        load_config(_write(tmp_path, yaml.safe_dump(config), "b.yaml"), SCHEMA)
    config["retrieval"] = {"datasets": ["rare50"]}  # the defaults: ks 20, 50, 100; at 50
    assert load_config(_write(tmp_path, yaml.safe_dump(config), "c.yaml"), SCHEMA)["retrieval"]
