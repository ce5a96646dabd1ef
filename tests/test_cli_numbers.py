"""Every numeric option of every `cec` command: NaN, infinity, negatives, zeros and
out-of-range values are refused where they are typed, by argparse, in cec's one-line
form (`cec CMD: error: argument --OPT: ...`, exit status 2), before anything is read or
written. One rule (the option types of cec.cli), one test per option and bad value."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cec.cli import build_parser, main

OUT = "out"
Argv = Callable[[str, str], list[str]]


def _synth(option: str, value: str) -> list[str]:
    argv = ["synth-mimic", "--out", OUT, "--admissions", "30", "--quiet"]
    if option == "--icd9-fraction":
        argv += ["--version", "iv"]
    return [*argv, option, value]


def _prepare(option: str, value: str) -> list[str]:
    return [
        "prepare", "--mimic-dir", "mimic", "--codes", "codes.txt", "--out", OUT, "--quiet",
        option, value,
    ]  # fmt: skip


def _code(option: str, value: str) -> list[str]:
    return ["code", "note.txt", "--dataset", "mimic3_50", "--backbone", "b", option, value]


def _evaluate(option: str, value: str) -> list[str]:
    return ["evaluate", "--pred", "p.tsv", "--gold", "g.jsonl", "--out", OUT, option, value]


BAD = [
    (_synth, "--admissions", ["nan", "inf", "-20", "0", "19", "20.5", "1e9", "1000001"]),
    (_synth, "--seed", ["-1", "nan", "1.5", str(2**32)]),
    (_synth, "--top50-split", ["0,5,5", "10,0,5", "10,5,0", "-1,5,5", "nan,5,5", "10,5"]),
    (_synth, "--rare50-split", ["1,1,1", "5,0,1", "5,1,0", "inf,1,1", "5,1,1,1"]),
    (_synth, "--other-notes", ["nan", "inf", "-inf", "-1", "1e6"]),
    (_synth, "--icd9-fraction", ["nan", "inf", "-0.1", "1.5"]),
    (_prepare, "--seed", ["-1", "nan", "1e3"]),
    (_prepare, "--icd-version", ["nan", "11"]),
    (
        _prepare,
        "--fractions",
        [
            "nan,0.1,0.2",
            "0.7,0.1,inf",
            "-0.1,0.6,0.5",
            "0.7,0.1,0.1",  # adds up to 0.9
            "0,0.5,0.5",  # no training share
            "0.9,0.1,0",  # no test share
            "1.5,-0.25,-0.25",
            "0.7,0.3",
        ],
    ),
    (_code, "--seed", ["-1", "nan"]),
    (_code, "--k", ["0", "-3", "nan", "100", "2.5"]),
    (_code, "--threshold", ["nan", "inf", "-0.1", "1.1"]),
    (_evaluate, "--bootstrap", ["-1", "nan", "1e9", "100001"]),
    (_evaluate, "--seed", ["-5", "inf"]),
]
CASES = [(argv, option, value) for argv, option, values in BAD for value in values]


@pytest.mark.parametrize(("argv", "option", "value"), CASES, ids=[f"{o}={v}" for _, o, v in CASES])
def test_a_senseless_number_is_refused_at_its_option(
    argv: Argv,
    option: str,
    value: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    args = argv(option, value)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"cec {args[0]}: error: argument {option}: "), err[0]
    assert "Traceback" not in err[0]
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing read


GOOD = [
    (_synth, "--admissions", "20", 20),
    (_synth, "--seed", "0", 0),
    (_synth, "--seed", str(2**32 - 1), 2**32 - 1),
    (_synth, "--top50-split", "40,5,5", (40, 5, 5)),
    (_synth, "--rare50-split", "2,1,1", (2, 1, 1)),
    (_synth, "--other-notes", "0", 0.0),
    (_synth, "--icd9-fraction", "0", 0.0),
    (_synth, "--icd9-fraction", "1", 1.0),
    (_prepare, "--fractions", "0.7,0.1,0.2", {"train": 0.7, "dev": 0.1, "test": 0.2}),
    (_prepare, "--fractions", "0.75,0,0.25", {"train": 0.75, "dev": 0.0, "test": 0.25}),
    (_code, "--k", "1", 1),
    (_code, "--k", "99", 99),
    (_code, "--threshold", "0", 0.0),
    (_code, "--threshold", "1", 1.0),
    (_evaluate, "--bootstrap", "0", 0),
]


@pytest.mark.parametrize(("argv", "option", "value", "parsed"), GOOD)
def test_the_edges_of_each_range_are_accepted(
    argv: Argv, option: str, value: str, parsed: Any
) -> None:
    args = build_parser().parse_args(argv(option, value))
    assert getattr(args, option.lstrip("-").replace("-", "_")) == parsed


def test_the_admission_minimum_is_the_generators() -> None:
    from cec.cli import ADMISSIONS_MIN
    from cec.synth.plan import MIN_ADMISSIONS

    assert ADMISSIONS_MIN == MIN_ADMISSIONS


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["evaluate", "--pred", "p.tsv", "--gold", "g.jsonl"], "cec evaluate: error: "),
        (["evaluate", "--pred", "p", "--gold", "g", "--out", "o", "--typo"], "cec evaluate: "),
        (["synth-mimic", "--out", "o", "--admissions", "30", "--version", "v"], "cec synth-"),
        (["no-such-command"], "cec: error: "),
        ([], "cec: error: "),
    ],
)
def test_every_usage_error_is_one_line(
    argv: list[str], start: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """argparse's usage block and SystemExit became one line and status 2, like every
    other error of cec; an unknown option names the command it was given to."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(start), err
