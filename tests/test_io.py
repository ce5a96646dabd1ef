"""Atomic outputs: modes, the folder swap, and the clean-up of a killed run's leftovers."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cec.plumbing.errors import InputError
from cec.plumbing.io import (
    FILE_MODE,
    atomic_dir,
    atomic_write,
    check_output_file,
    check_output_folder,
    clean_stale_temps,
    read_jsonl,
    temp_prefix,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_swapped_folder_shares_its_files_like_any_output(tmp_path: Path) -> None:
    """safetensors and mkstemp write 0600: others on a cluster could not read the models."""
    out = tmp_path / "adapter"
    with atomic_dir(out) as tmp:
        private = tmp / "adapter_model.safetensors"
        private.write_bytes(b"weights")
        os.chmod(private, 0o600)
        (tmp / "sub").mkdir(mode=0o700)
        (tmp / "sub" / "x").write_text("x")
        os.chmod(tmp / "sub" / "x", 0o600)
    with atomic_write(tmp_path / "plain.json") as fh:
        fh.write("{}")
    assert _mode(out / "adapter_model.safetensors") == FILE_MODE == _mode(tmp_path / "plain.json")
    assert _mode(out / "sub" / "x") == FILE_MODE


def test_the_swap_replaces_the_whole_folder(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "old_only.txt").write_text("old")
    (out / "both.txt").write_text("old")
    with atomic_dir(out) as tmp:
        (tmp / "both.txt").write_text("new")
        assert (out / "both.txt").read_text() == "old"  # readers see the old until the swap
    assert sorted(p.name for p in out.iterdir()) == ["both.txt"]
    assert (out / "both.txt").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # the old folder is gone


def test_a_failed_build_leaves_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / "f").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "f").write_text("new")
        raise RuntimeError("stop")
    assert (out / "f").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_stale_temporaries_of_dead_processes_only_are_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "train.jsonl"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    host_prefix = temp_prefix(out).rsplit("-", 1)[0]  # ".train.jsonl.{host}"
    stale_file = tmp_path / f"{host_prefix}-{pid}.abc.part"
    stale_file.write_text("half")
    stale_dir = tmp_path / f"{host_prefix}-{pid}.def.part"
    stale_dir.mkdir()
    live = tmp_path / f"{temp_prefix(out)}ghi.part"  # this process: alive
    live.write_text("in progress")
    other_host = tmp_path / f".train.jsonl.otherhost-{pid}.jkl.part"
    other_host.write_text("another node's")
    other_name = tmp_path / f".dev.jsonl.{host_prefix.split('.')[-1]}-{pid}.mno.part"
    other_name.write_text("another output's")
    with caplog.at_level(logging.WARNING, logger="cec.plumbing.io"):
        removed = clean_stale_temps(out)
    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and other_host.exists() and other_name.exists()
    assert f"removed {stale_file}" in caplog.text and f"pid {pid}" in caplog.text


def test_output_paths_are_checked_before_any_work(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        check_output_folder(afile)
    with pytest.raises(InputError, match="cannot write below"):
        check_output_folder(afile / "sub")
    with pytest.raises(InputError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(InputError, match="cannot write below"):
        check_output_file(afile / "m.json")
    check_output_folder(tmp_path / "new" / "deeper")  # fine: nothing in the way
    check_output_file(tmp_path / "new" / "m.json")


@pytest.mark.parametrize(
    ("text", "row", "message"),
    [
        (b'{"a": 1}\n\n{"a": 2}\n', 2, "blank line between records"),
        (b'{"a": 1}\n{"a": \n', 2, "not valid JSON"),
        (b'{"a": 1}\n[1, 2]\n', 2, "not a JSON object"),
        (b'{"a": 1}\n{"a": "caf\xe9"}\n', 2, "not UTF-8"),
    ],
)
def test_jsonl_faults_name_file_and_row(
    tmp_path: Path, text: bytes, row: int, message: str
) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(text)
    with pytest.raises(InputError, match=message) as err:
        list(read_jsonl(path))
    assert err.value.row == row and err.value.file == str(path)


def test_jsonl_accepts_trailing_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n\n\n')
    assert list(read_jsonl(path)) == [{"a": 1}, {"a": 2}]


def _unwritable_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in. A folder of mode 0555 is one for a normal
    user; root (as in the CI container) writes there all the same, so there it is /sys,
    a kernel file system where even root creates no file. Skipped only where neither
    holds."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    probe = folder / "probe"
    try:
        probe.touch()
    except PermissionError:
        return folder
    probe.unlink()
    folder.chmod(0o755)
    sysfs = Path("/sys")
    try:
        (sysfs / f"cec-probe-{os.getpid()}").touch()
    except OSError:
        return sysfs
    (sysfs / f"cec-probe-{os.getpid()}").unlink()
    pytest.skip("no folder here refuses writes (root, and /sys is writable)")


def test_an_unwritable_output_location_is_refused_before_any_work(tmp_path: Path) -> None:
    """Permission bits cannot tell (root ignores them, a read-only mount overrides them):
    the check writes and removes a file, and names the path and the system's reason."""
    locked = _unwritable_folder(tmp_path)
    for check, target in (
        (check_output_folder, locked / "dataset"),
        (check_output_folder, locked / "new" / "deeper" / "dataset"),
        (check_output_file, locked / "metrics.json"),
        (check_output_file, locked / "new" / "metrics.json"),
    ):
        with pytest.raises(InputError, match="cannot write in") as err:
            check(target)
        assert err.value.file == str(target) and str(locked) in str(err.value)
    check_output_folder(tmp_path / "writable" / "dataset")
    assert not list(tmp_path.glob(".*.part"))  # the probe's file is gone


def test_prepare_on_a_read_only_location_reads_no_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`cec prepare` says it cannot write before it reads (here the inputs do not even
    exist: an error about them would mean they were read first)."""
    from cec.cli import main

    out = _unwritable_folder(tmp_path) / "dataset"
    missing = tmp_path / "nothing"
    for source in ("--mimic-dir", "--mimic4-dir"):
        argv = ["prepare", source, str(missing), "--codes", str(missing / "codes.txt"),
                "--out", str(out), "--quiet"]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"file {out}: cannot write in" in err and "codes" not in err, err
