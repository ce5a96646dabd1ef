"""`cec evaluate`'s inputs and output: every field of the gold and prediction files is
type-checked with a located error, and the metrics file can never be one of the inputs,
a folder, or a device (all through the real entry point: one line, status 2)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from cec.cli import main

GOLD = '{"hadm_id": 1, "labels": ["A"]}\n{"hadm_id": 2, "labels": ["B"]}\n'
PRED = "hadm_id\tcode\tprob\n1\tA\t0.9\n1\tB\t0.1\n2\tA\t0.2\n2\tB\t0.8\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    gold, pred = tmp_path / "gold.jsonl", tmp_path / "pred.tsv"
    gold.write_text(GOLD, encoding="utf-8")
    pred.write_text(PRED, encoding="utf-8")
    return gold, pred


def _evaluate(gold: Path, pred: Path, out: str | Path, *extra: str) -> list[str]:
    return [
        "evaluate", "--pred", str(pred), "--gold", str(gold), "--bootstrap", "0",
        "--out", str(out), *extra,
    ]  # fmt: skip


def _error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one error line of a command that must fail with status 2."""
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cec evaluate: error: "), err
    return err[0]


LABELS = "labels"
ID = "hadm_id"


@pytest.mark.parametrize(
    ("record", "field", "expect"),
    [
        ('{"hadm_id": 2, "labels": [["B"]]}', LABELS, "item 1 of 1: expected a code string"),
        ('{"hadm_id": 2, "labels": [{"B": 1}]}', LABELS, "found an object"),
        ('{"hadm_id": 2, "labels": [["B"]]}', LABELS, "found an array"),
        ('{"hadm_id": 2, "labels": ["B", 428]}', LABELS, "item 2 of 2: expected a code string"),
        ('{"hadm_id": 2, "labels": ["B", 428]}', LABELS, "found a number"),
        ('{"hadm_id": 2, "labels": [null]}', LABELS, "found null"),
        ('{"hadm_id": 2, "labels": "B"}', LABELS, "expected a list of codes, found a string"),
        ('{"hadm_id": 2.0, "labels": ["B"]}', ID, "whole-number admission id, found a number with"),
        ('{"hadm_id": "2.0", "labels": ["B"]}', ID, "found a string that is not all digits"),
        ('{"hadm_id": true, "labels": ["B"]}', ID, "found true or false"),
        ('{"hadm_id": null, "labels": ["B"]}', ID, "found null"),
        ('{"hadm_id": [2], "labels": ["B"]}', ID, "found an array"),
        ('{"hadm_id": -2, "labels": ["B"]}', ID, "found a negative number"),
    ],
)  # fmt: skip
def test_each_gold_field_is_type_checked(
    files: tuple[Path, Path],
    record: str,
    field: str,
    expect: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A label that is a list used to raise TypeError (unhashable) with a traceback; an id
    of 2.0 was reported as a prediction for an admission not in gold. The message names
    the gold file, the row and the field, and never the value (gold files hold notes)."""
    gold, pred = files
    gold.write_text(GOLD.splitlines()[0] + "\n" + record + "\n", encoding="utf-8")
    line = _error(_evaluate(gold, pred, gold.parent / "m.json"), capsys)
    assert f"file {gold}, row 2, field {field}: " in line and expect in line, line
    assert not (gold.parent / "m.json").exists()


def test_a_label_item_is_named_by_position_not_value(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    gold, pred = files
    gold.write_text(GOLD.replace('["B"]', '["B", "SECRET-MARKER"]'), encoding="utf-8")
    line = _error(_evaluate(gold, pred, gold.parent / "m.json"), capsys)
    assert "row 2, field labels: item 2 of 2 is not in the label set" in line
    assert "SECRET-MARKER" not in line


def test_an_admission_twice_in_gold_is_the_gold_files_fault(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to be reported as pairs without prediction in the prediction file."""
    gold, pred = files
    gold.write_text(GOLD + '{"hadm_id": "1", "labels": ["B"]}\n', encoding="utf-8")
    line = _error(_evaluate(gold, pred, gold.parent / "m.json"), capsys)
    assert f"file {gold}, row 3, field hadm_id: admission 1 appears twice (first at row 1)" in line


def test_string_and_integer_ids_match_the_predictions(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`cec prepare` writes ids as strings; a hand-made gold file may use integers."""
    gold, pred = files
    gold.write_text(GOLD.replace('"hadm_id": 2', '"hadm_id": "2"'), encoding="utf-8")
    assert main(_evaluate(gold, pred, gold.parent / "m.json")) == 0


def test_an_empty_gold_file_is_named(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    gold, pred = files
    gold.write_text("", encoding="utf-8")
    line = _error(_evaluate(gold, pred, gold.parent / "m.json"), capsys)
    assert f"file {gold}: no records" in line


@pytest.mark.parametrize(
    ("row", "expect"),
    [
        ("1.0\tB\t0.1", "row 3, field hadm_id: expected a whole-number admission id, found '1.0'"),
        ("-1\tB\t0.1", "field hadm_id: expected a whole-number"),
        ("1\t\t0.1", "row 3, field code: expected a code"),
        ("1\t B\t0.1", "field code: expected a code"),
        ("1\tB\tnan", "row 3, field prob: nan is not a finite number"),
        ("1\tB\tinf", "field prob: inf is not a finite number"),
        ("1\tB\t-0.0001", "field prob: -0.0001 is outside [0, 1]"),
    ],
)
def test_each_prediction_field_is_checked(
    files: tuple[Path, Path], row: str, expect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gold, pred = files
    pred.write_text(PRED.replace("1\tB\t0.1", row), encoding="utf-8")
    line = _error(
        _evaluate(gold, pred, gold.parent / "m.json", "--codes", str(_codes(gold))), capsys
    )
    assert f"file {pred}, " in line and expect in line, line


def _codes(gold: Path) -> Path:
    """A codes.tsv of the label set A, B (so the prediction file is not the label set)."""
    path = gold.parent / "codes.tsv"
    columns = "code\tkind\tdescription\tparent\tparent_description\n"
    path.write_text(columns + "A\tdiagnosis\ta\t\t\nB\tdiagnosis\tb\t\t\n", encoding="utf-8")
    return path


def _same_as_pred(pred: Path) -> Path:
    return pred


def _dotted(pred: Path) -> Path:
    return pred.parent / "sub" / ".." / pred.name


def _symlink(pred: Path) -> Path:
    link = pred.parent / "link.tsv"
    link.symlink_to(pred)
    return link


def _hard_link(pred: Path) -> Path:
    link = pred.parent / "hard.tsv"
    os.link(pred, link)
    return link


@pytest.mark.parametrize("spelling", [_same_as_pred, _dotted, _symlink, _hard_link])
def test_out_may_not_be_the_prediction_file(
    files: tuple[Path, Path],
    spelling: Callable[[Path], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--out` equal to `--pred` used to overwrite the predictions with the metrics."""
    gold, pred = files
    (pred.parent / "sub").mkdir()
    out = spelling(pred)
    line = _error(_evaluate(gold, pred, out), capsys)
    assert "is the --pred file" in line
    assert pred.read_text(encoding="utf-8") == PRED


@pytest.mark.parametrize("flag", ["--gold", "--dev-gold", "--dev-pred"])
def test_out_may_not_be_any_input(
    files: tuple[Path, Path], flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gold, pred = files
    dev = ["--dev-pred", str(pred), "--dev-gold", str(gold)]
    out = {"--gold": gold, "--dev-gold": gold, "--dev-pred": pred}[flag]
    line = _error(_evaluate(gold, pred, out, *dev), capsys)
    assert "writing the metrics would destroy it" in line
    assert gold.read_text(encoding="utf-8") == GOLD and pred.read_text(encoding="utf-8") == PRED


def test_out_with_a_trailing_slash_names_a_folder(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """`--out newdir/` used to write a file named newdir."""
    gold, pred = files
    line = _error(_evaluate(gold, pred, f"{gold.parent / 'newdir'}/"), capsys)
    assert "argument --out: " in line and "names a folder" in line
    assert not (gold.parent / "newdir").exists()


def test_out_may_not_be_a_pipe(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A FIFO (or a device: /dev/full) given as --out was replaced by a regular file, since
    the metrics are written aside and renamed into place."""
    gold, pred = files
    fifo = gold.parent / "fifo"
    os.mkfifo(fifo)
    line = _error(_evaluate(gold, pred, fifo), capsys)
    assert "is not a regular file" in line
    assert fifo.is_fifo()


def test_an_input_that_is_a_device_is_not_called_a_folder(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, pred = files
    line = _error(_evaluate(Path(os.devnull), pred, pred.parent / "m.json"), capsys)
    assert "the gold file is not a regular file" in line
