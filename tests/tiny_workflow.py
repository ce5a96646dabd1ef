"""The tiny workflow, run once per test session, for every test that reads a finished run.

The run goes through a real one-node SLURM cluster (`tools/slurm/up.sh`, the `slurm`
profile) where the machine allows it (root and apt-get), and through the local executor
elsewhere. It starts in a background thread as soon as collection shows that a selected
test needs it (`tests/conftest.py`), so the unit tests run while it works; the first test
that needs it waits for it. Its SLURM cluster stays up until the session ends (with the
SLURM client installed and no controller, every `snakemake` command would wait 10 s: the
executor plugin asks `scontrol show config` at import), then `tools/slurm/down.sh` stops
every daemon it started, which the session checks.

Every wall-clock limit here is a hang guard, far above a real run (a few minutes on a
2-core machine): a slow machine must never fail a test, only a hung one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
CONFIG = "tests/config/tiny.yaml"
# Hang guards (seconds), not speed limits.
RUN_HANG_GUARD_S = 3600
SLURM_UP_HANG_GUARD_S = 900
SLURM_DOWN_HANG_GUARD_S = 120
WORKFLOW_PARTS = [
    "Snakefile",
    "rules",
    "workflow",
    "config",
    "tests/config",
    "envs",
    "profiles",
    "report",
    "src/cec/resources",
]
DAEMONS = ("slurmd", "slurmctld", "slurmdbd", "mariadbd")
TEST_PARTITION = "cec"  # tools/slurm/up.sh's second partition, not the default one


def set_profile_partition(profile: Path, partition: str) -> None:
    """Set `slurm_partition` in the profile's default resources, as a user of a real
    cluster does (the line ships commented out), so the run shows that placement set in
    the profile reaches sbatch."""
    text = profile.read_text(encoding="utf-8")
    commented = "  # slurm_partition: cpu"
    if commented not in text:
        raise RuntimeError(f"{profile} no longer has the line {commented!r}")
    profile.write_text(text.replace(commented, f"  slurm_partition: {partition}"), "utf-8")


def copy_workflow(dest: Path) -> Path:
    """The files a run reads from the repository (templates and recordings included)."""
    for part in WORKFLOW_PARTS:
        src = REPO / part
        (dest / part).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest / part)
        else:
            shutil.copy2(src, dest / part)
    return dest


def in_ci() -> bool:
    """CI must execute every test that the machine could run: no silent skips there."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def slurm_unavailable() -> str | None:
    """Why this machine cannot bring up the test cluster, or None if it can."""
    if os.geteuid() != 0:
        return "bringing up SLURM needs root (apt-get install, daemons as root)"
    if shutil.which("apt-get") is None:
        return "bringing up SLURM needs apt-get (Debian packages)"
    if shutil.which("slurmctld") is None and os.environ.get("CEC_NO_APT") == "1":
        return "CEC_NO_APT=1: not installing SLURM"
    return None


@dataclass
class SlurmJob:
    job_id: str
    rule: str
    state: str
    gpu: bool
    partition: str | None  # as sbatch was asked (None: the cluster's default)


@dataclass
class TinyRun:
    """What the one run of the tiny workflow did; `work` holds its finished tree."""

    work: Path
    executor: str = "local"  # slurm | local
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    slurm_skipped: str | None = None  # why the run did not use SLURM
    slurm_up: str = ""  # up.sh's output
    slurm_down: str = ""  # down.sh's output
    slurm_jobs: list[SlurmJob] = field(default_factory=list)
    daemons_left: list[str] = field(default_factory=list)  # pid files down.sh did not clear
    error: str | None = None  # an exception in the runner itself

    def require_success(self) -> None:
        """Fail the calling test with the run's own output when the run failed."""
        assert self.error is None, self.error
        assert self.returncode == 0, (
            f"the tiny workflow ({self.executor}) exited {self.returncode}:\n"
            + self.stdout[-3000:]
            + self.stderr[-3000:]
        )

    def copy_to(self, dest: Path) -> Path:
        """A private copy of the finished run (results and Snakemake's metadata), for tests
        that change files or run more jobs."""
        self.require_success()
        shutil.copytree(self.work, dest, symlinks=True, ignore=shutil.ignore_patterns("locks"))
        return dest


def snakemake(
    args: list[str], cwd: Path, hang_guard_s: int = 600
) -> subprocess.CompletedProcess[str]:
    """Snakemake in `cwd`; `hang_guard_s` only stops a hung command (a real one takes
    seconds)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=hang_guard_s,
    )


class TinyWorkflow:
    """Runs the tiny workflow once, in a background thread; `result()` waits for it."""

    def __init__(self) -> None:
        self.root: Path | None = None
        self.run = TinyRun(work=Path("not-started"))
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[str] | None = None
        self._piddir = Path("not-started")
        self._slurm_started = False

    def start(self) -> None:
        if self._thread is None:
            self.root = Path(tempfile.mkdtemp(prefix="cec-tiny-workflow-"))
            self.run.work = self.root / "wf"
            self._piddir = self.root / "slurm-pids"
            self._thread = threading.Thread(target=self._main, name="tiny-workflow", daemon=True)
            self._thread.start()

    def result(self) -> TinyRun:
        self.start()
        assert self._thread is not None
        self._thread.join(RUN_HANG_GUARD_S + SLURM_UP_HANG_GUARD_S + SLURM_DOWN_HANG_GUARD_S)
        if self._thread.is_alive():
            self.run.error = "hang guard: the tiny workflow did not finish"
        return self.run

    def stop(self) -> list[str]:
        """End of session: kill a run still going (an interrupted session), stop the
        cluster; return the daemons whose pid files down.sh left behind."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)
        if self._slurm_started:
            self._slurm_down()
        return self.run.daemons_left

    def _env(self) -> dict[str, str]:
        return {**os.environ, "FAKE_GPUS": "2", "PIDDIR": str(self._piddir)}

    def _main(self) -> None:
        start = time.perf_counter()
        try:
            copy_workflow(self.run.work)
            reason = slurm_unavailable()
            if reason is None:
                reason = self._slurm_up()
            if reason is None:
                self._run_slurm()
            else:
                self.run.slurm_skipped = reason
                self._execute(["all", "--cores", "2", "--configfile", CONFIG])
        except Exception as exc:  # noqa: BLE001 - reported to every test that reads the run
            self.run.error = f"the tiny workflow runner failed: {exc!r}"
        self.run.seconds = time.perf_counter() - start

    def _execute(self, args: list[str]) -> None:
        self._proc = subprocess.Popen(
            [*SNAKEMAKE, *args],
            cwd=self.run.work,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = self._proc.communicate(timeout=RUN_HANG_GUARD_S)
        except subprocess.TimeoutExpired:
            os.killpg(self._proc.pid, signal.SIGKILL)
            out, err = self._proc.communicate()
            err += f"\nhang guard: killed after {RUN_HANG_GUARD_S} s"
        self.run.returncode = self._proc.returncode
        self.run.stdout, self.run.stderr = out, err

    def _slurm_tool(self, name: str, hang_guard_s: int) -> tuple[int, str]:
        """Run tools/slurm/{name} with this session's pid folder; (exit status, output)."""
        done = subprocess.run(
            ["bash", str(REPO / "tools/slurm" / name)],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=hang_guard_s,
        )
        return done.returncode, done.stdout + done.stderr

    def _slurm_up(self) -> str | None:
        self._slurm_started = True
        status, self.run.slurm_up = self._slurm_tool("up.sh", SLURM_UP_HANG_GUARD_S)
        if status != 0:
            return f"tools/slurm/up.sh failed (exit {status}):\n{self.run.slurm_up[-2000:]}"
        return None

    def _run_slurm(self) -> None:
        self.run.executor = "slurm"
        shutil.copytree(REPO / "profiles" / "slurm", self.run.work / "slurm")
        set_profile_partition(self.run.work / "slurm" / "config.yaml", TEST_PARTITION)
        self._execute(
            ["--profile", "slurm", "all", "--configfile", CONFIG, "--jobs", "4",
             "--slurm-init-seconds-before-status-checks", "1"]
        )  # fmt: skip
        sacct = subprocess.run(
            ["sacct", "-X", "--parsable2", "--noheader", "--starttime", "now-3hours",
             "--format=JobID,State,AllocTRES%80,SubmitLine%2000"],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        for line in sacct.stdout.splitlines():
            job_id, state, tres, submit = line.split("|", 3)
            rule = re.search(r"rule_([a-z0-9_]+?)(?:_wildcards|['\"\s]|$)", submit)
            if rule and str(self.run.work) in submit:
                partition = re.search(r"(?:^|\s)(?:-p|--partition)[ =]'?([\w-]+)", submit)
                self.run.slurm_jobs.append(
                    SlurmJob(
                        job_id,
                        rule.group(1),
                        state,
                        "gres/gpu" in tres,
                        partition.group(1) if partition else None,
                    )
                )

    def _slurm_down(self) -> None:
        _, self.run.slurm_down = self._slurm_tool("down.sh", SLURM_DOWN_HANG_GUARD_S)
        self._slurm_started = False
        self.run.daemons_left = [d for d in DAEMONS if (self._piddir / f"{d}.pid").exists()]
