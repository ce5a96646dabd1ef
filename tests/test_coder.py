"""`cec code`: bad input is named before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from cec.cli import main
from cec.coder import read_note
from cec.plumbing.errors import InputError


def test_read_note_rejects_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    with pytest.raises(InputError, match="the note is empty"):
        read_note(empty)
    binary = tmp_path / "scan.pdf"
    binary.write_bytes(b"%PDF-1.4\x00\x01\x02")
    with pytest.raises(InputError, match="binary file"):
        read_note(binary)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("Patient with caf\xe9 au lait spots".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_note(latin)
    with pytest.raises(InputError, match="no such note file"):
        read_note(tmp_path / "missing.txt")
    good = tmp_path / "note.txt"
    good.write_text("Admission Date: ...\nAKI on CKD.\n")
    assert read_note(good).startswith("Admission Date")


def test_cli_names_missing_artefacts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Acute kidney failure.\n")
    code = main(
        [
            "code", str(note), "--dataset", "rare50", "--backbone", "tiny_llama",
            "--configfile", "tests/config/tiny.yaml", "--results", str(tmp_path / "results"),
        ]
    )  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "not built yet" in err and "snakemake" in err


def test_cli_names_unknown_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    note.write_text("text")
    args = ["code", str(note), "--dataset", "mimic4", "--backbone", "tiny_llama"]
    assert main([*args, "--configfile", "tests/config/tiny.yaml"]) == 2
    assert "no dataset 'mimic4'" in capsys.readouterr().err
