"""The paths Python code finds workflow outputs by are the rules' own outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cec.plumbing.artifacts import PATTERNS, artifact
from cec.plumbing.errors import InputError
from tests.conftest import REPO

DIRECTIVE = re.compile(r"^    (\w+):", re.M)


def rule_outputs() -> dict[str, set[str]]:
    """rule -> the quoted strings of its `output:` section, from rules/*.smk."""
    out: dict[str, set[str]] = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text(encoding="utf-8")
        for block in re.split(r"^(?=rule \w+:)", text, flags=re.M):
            name = re.match(r"rule (\w+):", block)
            if name is None:
                continue
            sections = DIRECTIVE.split(block)
            for key, body in zip(sections[1::2], sections[2::2], strict=True):
                if key == "output":
                    out[name.group(1)] = set(re.findall(r'"([^"]+)"', body))
    return out


def test_every_pattern_is_a_rule_output() -> None:
    outputs = rule_outputs()
    assert len(outputs) > 15  # the parser read the rules
    declared = {path for paths in outputs.values() for path in paths}
    missing = {name: p for name, p in PATTERNS.items() if p not in declared}
    assert not missing, f"not the output of any rule: {missing}"


def test_artifact_paths_follow_the_results_folder(tmp_path: Path) -> None:
    path = artifact(
        "label_adapter", tmp_path, dataset="rare50", backbone="smollm2", variant="cec", seed=13
    )
    assert path == tmp_path / "adapters/rare50/smollm2/label_cec/seed13"
    assert artifact("model", backbone="x") == Path("results/models/x")


# --- damaged artefacts: named, with the target that makes them again ---


def test_a_file_in_an_output_folder_maps_to_the_workflow_target(tmp_path: Path) -> None:
    from cec.plumbing.artifacts import workflow_target

    inside = tmp_path / "copy/adapters/rare50/smollm2/label_cec/seed13/provenance.json"
    assert workflow_target(inside) == "results/adapters/rare50/smollm2/label_cec/seed13"
    assert (
        workflow_target(tmp_path / "r/concepts/x/concepts.tsv") == "results/concepts/x/concepts.tsv"
    )
    assert workflow_target(tmp_path / "notes/mine.txt") is None


def _safetensors(path: Path, tensors: int = 2) -> bytes:
    header = {f"t{i}": {"dtype": "F32", "shape": [2], "data_offsets": [8 * i, 8 * i + 8]}
              for i in range(tensors)}  # fmt: skip
    raw = json.dumps(header).encode()
    data = len(raw).to_bytes(8, "little") + raw + bytes(8 * tensors)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d[:-3], "cut"),
        (lambda d: d + b"\0", "longer than its header says"),
        (lambda d: d[:5], "header length field does not fit"),
        (lambda d: (10).to_bytes(8, "little") + b"not json!!" + d[18:], "header is unreadable"),
    ],
    ids=["cut", "longer", "cut in the length", "garbled header"],
)
def test_check_safetensors(tmp_path: Path, edit, words: str) -> None:  # noqa: ANN001
    from cec.plumbing.artifacts import check_safetensors

    path = tmp_path / "results/models/m/model.safetensors"
    path.parent.mkdir(parents=True)
    path.write_bytes(edit(_safetensors(path)))
    with pytest.raises(InputError) as err:
        check_safetensors(path)
    assert words in str(err.value) and err.value.file == str(path)
    assert "snakemake --cores 2 --force results/models/m" in str(err.value)


def test_a_whole_safetensors_file_passes(tmp_path: Path) -> None:
    from cec.plumbing.artifacts import check_safetensors

    path = tmp_path / "model.safetensors"
    _safetensors(path)
    check_safetensors(path)


def test_read_json_artifact_names_the_file_and_the_fault(tmp_path: Path) -> None:
    from cec.plumbing.artifacts import read_json_artifact

    path = tmp_path / "results/concepts/d/code_concepts.json"
    path.parent.mkdir(parents=True)
    for text, words in [
        ('{"a": [1', "not valid JSON"),
        ("[1]", "expected an object at the top, found an array"),
        ("", "empty"),
        ("{\0}", "NUL byte"),
    ]:
        path.write_text(text)
        with pytest.raises(InputError) as err:
            read_json_artifact(path)
        message = str(err.value)
        assert words in message and "\n" not in message, message
        assert "snakemake --cores 2 --force results/concepts/d/code_concepts.json" in message
    path.write_text('{"a": 1}')
    assert read_json_artifact(path) == {"a": 1}


def test_a_damaged_note_fingerprint_file_is_named(tmp_path: Path) -> None:
    """The privacy guard's hashes (read by the concept-generation job)."""
    import numpy as np

    from cec.concepts.guard import NoteShingleGuard

    path = tmp_path / "results/privacy/rare50/note_shingles.npy"
    path.parent.mkdir(parents=True)
    NoteShingleGuard(np.arange(50, dtype=np.uint64)).save(path)
    assert len(NoteShingleGuard.load(path)) == 50
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError) as err:
        NoteShingleGuard.load(path)
    assert "cut or damaged" in str(err.value)
    assert "snakemake --cores 2 --force results/privacy/rare50/note_shingles.npy" in str(err.value)
