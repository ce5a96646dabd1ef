"""Commands that write several files leave the old output or the new one, never a mix,
wherever they are killed; and the next run cleans what a killed run left behind.

Each command is killed at every file boundary in turn (a temporary written, a rename, a
folder swap: `cec.plumbing.io` counts them and SIGKILLs itself at the N-th when the test asks),
while it replaces an older output, until a run gets through all its boundaries."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cec.plumbing.io import KILL_AT_ENV, clean_stale_temps, temp_prefix
from tests.conftest import REPO

CEC = [sys.executable, "-m", "cec.cli"]
HANG_GUARD_S = 600  # far above any real run (seconds)
RARE50 = str(REPO / "config/codes/rare50_codes.txt")


def _cec(args: list[str], kill_at: int | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(KILL_AT_ENV, None)
    if kill_at is not None:
        env[KILL_AT_ENV] = str(kill_at)
    return subprocess.run(
        [*CEC, *args], capture_output=True, text=True, env=env, timeout=HANG_GUARD_S
    )


def _synth(out: Path, seed: int) -> list[str]:
    return [
        "synth-mimic", "--out", str(out), "--admissions", "60", "--seed", str(seed),
        "--top50-split", "12,2,2", "--rare50-split", "20,2,2", "--other-notes", "0", "--quiet",
    ]  # fmt: skip


def _prepare(mimic: Path, out: Path, seed: int) -> list[str]:
    return [
        "prepare", "--mimic-dir", str(mimic), "--codes", RARE50, "--out", str(out),
        "--seed", str(seed), "--quiet",
    ]  # fmt: skip


def _state(folder: Path) -> dict[str, str]:
    """Relative path -> content hash of every file, ignoring the wall time that the
    synthetic manifest records (the only field that differs between equal runs)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.name == "synth_manifest.json":
                data = b"manifest"
            out[str(path.relative_to(folder))] = hashlib.sha256(data).hexdigest()
    return out


@pytest.fixture(scope="module")
def mimic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mimic") / "mimic"
    done = _cec(_synth(folder, 3))
    assert done.returncode == 0, done.stderr
    return folder


def _kill_at_every_boundary(
    old: Path, target: Path, command: list[str], new_state: dict[str, str]
) -> int:
    """Replace `old` (copied to `target` each time) with the command's output, killed at
    boundary 1, 2, ... until a run finishes; check the folder after every kill. Returns
    the number of kills."""
    old_state = _state(old)
    assert old_state != new_state  # the check below can tell old from new
    for kill_at in range(1, 200):
        shutil.rmtree(target, ignore_errors=True)
        for stale in target.parent.glob(f".{target.name}.*"):
            shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
        shutil.copytree(old, target)
        run = _cec(command, kill_at)
        if run.returncode == 0:
            assert _state(target) == new_state
            return kill_at - 1
        assert run.returncode == -signal.SIGKILL, run.stderr
        now = _state(target) if target.exists() else None
        assert now in (old_state, new_state), f"mixed output after a kill at boundary {kill_at}"
    raise AssertionError("the command never finished")


def test_a_killed_prepare_leaves_the_old_dataset_or_the_new(mimic: Path, tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    assert _cec(_prepare(mimic, old, 1)).returncode == 0
    assert _cec(_prepare(mimic, new, 2)).returncode == 0  # another split: other files
    target = tmp_path / "dataset"
    kills = _kill_at_every_boundary(old, target, _prepare(mimic, target, 2), _state(new))
    assert kills >= 6  # five files written aside, the swap, and the removal of the old


def test_a_killed_synth_leaves_the_old_tables_or_the_new(mimic: Path, tmp_path: Path) -> None:
    new = tmp_path / "new"
    assert _cec(_synth(new, 4)).returncode == 0
    target = tmp_path / "mimic"
    kills = _kill_at_every_boundary(mimic, target, _synth(target, 4), _state(new))
    assert kills >= 3


def test_the_next_run_cleans_what_a_killed_run_left(mimic: Path, tmp_path: Path) -> None:
    target = tmp_path / "dataset"
    assert _cec(_prepare(mimic, target, 1)).returncode == 0
    # killed while writing its files aside: the temporary folder stays
    killed = _cec(_prepare(mimic, target, 2), kill_at=1)
    assert killed.returncode == -signal.SIGKILL
    left = sorted(tmp_path.glob(".dataset.*.part"))
    assert left
    # a live process's temporary (this test's own pid) is not the killed run's: kept
    mine = tmp_path / f"{temp_prefix(target)}x.part"
    mine.mkdir()
    again = _cec(_prepare(mimic, target, 2))
    assert again.returncode == 0, again.stderr
    for path in left:
        assert not path.exists()
        assert f"removed {path}" in again.stderr  # and it says so
    assert mine.exists() and str(mine) not in again.stderr
    assert clean_stale_temps(target) == []  # nothing else of a dead process is left
