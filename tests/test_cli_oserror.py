"""An operating-system error inside a command (no space left, a file too large for the
quota, a read-only file system, permission denied) ends in one line `cec CMD: error:
file F: REASON` and exit status 2, not a traceback, and the old output is still there.

The full disk is real where the system allows it: a file-size limit (RLIMIT_FSIZE, any
user) makes every write past it fail with EFBIG, and a small tmpfs in a private mount
namespace (`unshare --mount`, where permitted) fills up with ENOSPC. Errors the test
cannot cause for real mid-run (a file system turning read-only) are raised in place of
the command's work."""

from __future__ import annotations

import errno
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cec.cli import main
from tests.conftest import mini_tables, write_table

CEC = [sys.executable, "-m", "cec.cli"]
HANG_GUARD_S = 600
GOLD = '{"hadm_id": 1, "labels": ["A"]}\n{"hadm_id": 2, "labels": ["B"]}\n'
PRED = "hadm_id\tcode\tprob\n1\tA\t0.9\n1\tB\t0.1\n2\tA\t0.2\n2\tB\t0.8\n"
CODES = "584.9\n585.9\n96.71\nV45.81\n486\n"


def _inputs(root: Path) -> tuple[Path, Path]:
    gold, pred = root / "gold.jsonl", root / "pred.tsv"
    gold.write_text(GOLD, encoding="utf-8")
    pred.write_text(PRED, encoding="utf-8")
    return gold, pred


def _evaluate(root: Path, out: Path, bootstrap: str = "0") -> list[str]:
    gold, pred = _inputs(root)
    return [
        "evaluate", "--pred", str(pred), "--gold", str(gold), "--bootstrap", bootstrap,
        "--out", str(out),
    ]  # fmt: skip


def _mimic(root: Path) -> list[str]:
    """`cec prepare` of the miniature MIMIC-III of tests/conftest.py."""
    mimic = root / "mimic"
    mimic.mkdir()
    for table, rows in mini_tables().items():
        write_table(mimic, table, rows)
    (root / "codes.txt").write_text(CODES, encoding="utf-8")
    return ["prepare", "--mimic-dir", str(mimic), "--codes", str(root / "codes.txt"), "--quiet"]


def _run(argv: list[str], limit: int | None = None) -> subprocess.CompletedProcess[str]:
    """`cec ARGV` in a child process; with `limit`, no file it writes may grow beyond that
    many bytes (the write fails with EFBIG, as on a full quota)."""

    def set_limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, don't kill
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [*CEC, *argv],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        env=env,
        preexec_fn=set_limit if limit is not None else None,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], command: str) -> str:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith(f"cec {command}: error: "), lines
    return lines[-1]


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".part")]


# ----------------------------------------------------------- a real limit: EFBIG on write


def test_synth_mimic_past_the_file_size_limit(tmp_path: Path) -> None:
    out = tmp_path / "mimic"
    argv = ["synth-mimic", "--out", str(out), "--admissions", "20", "--quiet"]
    assert _run(argv).returncode == 0
    before = _tree(out)
    line = _one_line_error(_run([*argv, "--seed", "14"], limit=20_000), "synth-mimic")
    assert line == f"cec synth-mimic: error: file {out}: File too large"
    assert _tree(out) == before and not _temporaries(tmp_path)


def test_evaluate_past_the_file_size_limit(tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    assert _run(_evaluate(tmp_path, out)).returncode == 0
    before = out.read_bytes()
    line = _one_line_error(_run(_evaluate(tmp_path, out, "3"), limit=100), "evaluate")
    assert line == f"cec evaluate: error: file {out}: File too large"
    assert out.read_bytes() == before and not _temporaries(tmp_path)


def test_prepare_past_the_file_size_limit(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    argv = [*_mimic(tmp_path), "--out", str(out)]
    assert _run(argv).returncode == 0
    before = _tree(out)
    line = _one_line_error(_run([*argv, "--seed", "3"], limit=200), "prepare")
    assert line == f"cec prepare: error: file {out}: File too large"
    assert _tree(out) == before and not _temporaries(tmp_path)


# ----------------------------------------------------- a real full disk: ENOSPC on a tmpfs


def _can_mount(folder: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = f"mount -t tmpfs -o size=64k tmpfs {folder}"
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", probe], capture_output=True, timeout=60
    )
    return result.returncode == 0


def _on_full_disk(disk: Path, argv: list[str], size_kb: int) -> subprocess.CompletedProcess[str]:
    """`cec ARGV` with a `size_kb` tmpfs mounted at `disk` (in a private mount namespace:
    nobody else sees it, and it goes with the process), filled up before the command."""
    script = (
        f'mount -t tmpfs -o size={size_kb}k tmpfs "$0" && '
        '(dd if=/dev/zero of="$0/filler" bs=1k 2>/dev/null; true) && exec "$@"'
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, str(disk), *CEC, *argv],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        env=env,
    )


@pytest.fixture
def disk(tmp_path: Path) -> Path:
    folder = tmp_path / "disk"
    folder.mkdir()
    if not _can_mount(folder):
        pytest.skip("no private mount namespace here (unshare --mount needs privileges)")
    return folder


def test_evaluate_on_a_full_disk(tmp_path: Path, disk: Path) -> None:
    out = disk / "metrics.json"
    result = _on_full_disk(disk, _evaluate(tmp_path, out), 64)
    line = _one_line_error(result, "evaluate")
    assert line == f"cec evaluate: error: file {out}: No space left on device"


def test_synth_mimic_on_a_full_disk(disk: Path) -> None:
    out = disk / "mimic"
    argv = ["synth-mimic", "--out", str(out), "--admissions", "20", "--quiet"]
    line = _one_line_error(_on_full_disk(disk, argv, 64), "synth-mimic")
    assert line == f"cec synth-mimic: error: file {out}: No space left on device"


# ------------------------------------------------- errors raised in place of the work


def _raiser(exc: OSError):  # noqa: ANN202 - any signature
    def raise_it(*_args: object, **_kwargs: object) -> None:
        raise exc

    return raise_it


def _synth_argv(root: Path) -> list[str]:
    return ["synth-mimic", "--out", str(root / "m"), "--admissions", "20", "--quiet"]


def _prepare_argv(root: Path) -> list[str]:
    return [*_mimic(root), "--out", str(root / "o")]


def _evaluate_argv(root: Path) -> list[str]:
    return _evaluate(root, root / "m.json")


def _code_argv(root: Path) -> list[str]:
    (root / "note.txt").write_text("a note", encoding="utf-8")
    return [
        "code", str(root / "note.txt"), "--dataset", "mimic3_50", "--backbone", "b",
        "--configfile", str(root / "config.yaml"),
    ]  # fmt: skip


WORK = {
    "synth-mimic": (_synth_argv, "cec.synth.mimic3_writer.write_synthetic_mimic"),
    "prepare": (_prepare_argv, "cec.datasets.sources.Source.prepare"),
    "evaluate": (_evaluate_argv, "cec.evaluation.metrics.evaluate_files"),
    "code": (_code_argv, "cec.coder.code_note"),
}


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.ENOSPC, errno.EIO])
@pytest.mark.parametrize("command", list(WORK))
def test_an_os_error_in_any_command_is_one_line(
    command: str,
    code: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv, target = WORK[command]
    args = argv(tmp_path)
    where = tmp_path / "somewhere" / "file.bin"
    monkeypatch.setattr(target, _raiser(OSError(code, os.strerror(code), str(where))))
    monkeypatch.setattr("cec.plumbing.config.load_config", lambda *_a, **_k: {})
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"cec {command}: error: file {where}: {os.strerror(code)}"]


def test_a_temporary_is_reported_as_the_output_and_args_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The atomic writers' `.NAME.HOST-PID.*.part` siblings are no name the user gave; an
    OSError without errno shows its type, never its arguments (they may hold content)."""
    out = tmp_path / "m.json"
    temporary = tmp_path / ".m.json.host-1.x1y2.part"
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(temporary))
    monkeypatch.setattr("cec.plumbing.io.write_json", _raiser(full))
    assert main(_evaluate(tmp_path, out)) == 2
    assert capsys.readouterr().err.strip() == (
        f"cec evaluate: error: file {out}: No space left on device"
    )
    monkeypatch.setattr("cec.plumbing.io.write_json", _raiser(OSError("SECRET note text")))
    assert main(_evaluate(tmp_path, out)) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"cec evaluate: error: file {out}: OSError (an operating-system error)"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _evaluate(tmp_path, tmp_path / "m.json")
    gold = tmp_path / "gold.jsonl"
    gold.chmod(0)
    try:
        assert main(args) == 2
    finally:
        gold.chmod(0o644)
    err = capsys.readouterr().err.strip()
    assert err == f"cec evaluate: error: file {gold}: Permission denied"
