"""A job that fails on the user's input or on the file system leaves one readable line in
its log and exits with status 2; a bug keeps its traceback (the developer needs it)."""

from __future__ import annotations

import errno
import logging
from pathlib import Path

import pytest

from cec.plumbing.errors import InputError, os_error_message
from cec.plumbing.logs import USER_ERROR_STATUS, job_log


def _failing(tmp_path: Path, exc: BaseException) -> str:
    log = tmp_path / "job.log"
    with pytest.raises(SystemExit) as info, job_log(log):
        logging.getLogger("cec.test").info("working")
        raise exc
    assert info.value.code == USER_ERROR_STATUS
    return log.read_text(encoding="utf-8")


def test_an_input_error_is_one_line(tmp_path: Path) -> None:
    text = _failing(tmp_path, InputError("bad", file="x.csv", row=3, field="TEXT"))
    failed = [line for line in text.splitlines() if "job failed" in line]
    assert len(failed) == 1 and failed[0].endswith("job failed: file x.csv, row 3, field TEXT: bad")
    assert "Traceback" not in text


def test_a_full_disk_is_one_line_with_path_and_reason(tmp_path: Path) -> None:
    exc = OSError(errno.ENOSPC, "No space left on device", "/data/out.jsonl")
    text = _failing(tmp_path, exc)
    assert "job failed: file /data/out.jsonl: No space left on device" in text
    assert "Traceback" not in text


def test_os_error_never_shows_its_arguments() -> None:
    """An OSError built from text (as some libraries raise it) shows its kind, not the text."""
    assert os_error_message(OSError("a note's words")) == "OSError (an operating-system error)"
    assert os_error_message(PermissionError(errno.EACCES, "Permission denied", "a", None, "b")) == (
        "file a -> b: Permission denied"
    )


def test_a_bug_keeps_its_traceback(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    with pytest.raises(KeyError), job_log(log):
        raise KeyError("code")
    assert "Traceback" in log.read_text(encoding="utf-8")
