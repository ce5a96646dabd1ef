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

from cec.plumbing.errors import InputError, os_error_message

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The exit status of a job that failed on the user's input or on the file system (as `cec`)
USER_ERROR_STATUS = 2
# The first line of every job log, with the threads the rule declares
STARTED_LINE = "job started, threads: "
# Each job logs the third-party packages it loaded, so a test can check on a real run that
# every rule's code needs no more than its conda env (envs/) installs.
MODULES_LINE = "python packages loaded: "


def loaded_packages() -> list[str]:
    """Top-level names of the non-standard-library modules this process has imported."""
    names = {name.split(".")[0] for name in list(sys.modules)}
    return sorted(
        n for n in names - set(sys.stdlib_module_names) if not n.startswith("_") and n != "cec"
    )


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
        # the job's own start (and, below, end) time with its threads: the tiny run's test
        # checks from these that no more threads ran at once than Snakemake was given
        logging.getLogger("cec").info("%s%d", STARTED_LINE, int(threads or 1))
        try:
            yield fh
        except InputError as exc:
            # the user's fault, located: one line, no traceback (Snakemake shows this log)
            logging.getLogger("cec").error("job failed: %s", exc)
            raise SystemExit(USER_ERROR_STATUS) from None
        except OSError as exc:
            logging.getLogger("cec").error("job failed: %s", os_error_message(exc))
            raise SystemExit(USER_ERROR_STATUS) from None
        except Exception:
            logging.getLogger("cec").exception("job failed")
            raise
        finally:
            logging.getLogger("cec").info("%s%s", MODULES_LINE, " ".join(loaded_packages()))
            root.removeHandler(handler)
            sys.stderr = old
