"""Logging for Snakemake script adapters: one readable log file per job.

Progress bars and warnings go to the job's log (Snakemake shows it on failure); counts and
file names are logged, never note text.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def job_log(path: str | Path, threads: int | None = None) -> Iterator[TextIO]:
    """Send stderr and logging to `path` for the duration of a job; with `threads`, hold
    torch to the job's thread count (by default it takes every core, and two jobs side
    by side would then fight over them)."""
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        old = sys.stderr
        sys.stderr = fh
        root = logging.getLogger()
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            yield fh
        except Exception:
            logging.getLogger("cec").exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
            sys.stderr = old
