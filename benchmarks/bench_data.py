"""Benchmark of the data stage: synthetic MIMIC-III generation and dataset preparation.

Prints wall time, peak RSS (whole process tree, sampled) and rows/s for N admissions.
Run on demand (`make bench-data`, or with --admissions 60000 for a MIMIC-sized run);
it is not a test, because timings on shared machines are noisy.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def run_measured(cmd: list[str]) -> tuple[float, float]:
    """Run a command; return (seconds, peak RSS in GB summed over its process tree)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd)
    parent = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            procs = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in procs))
        except psutil.Error:
            pass
        time.sleep(0.1)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return time.perf_counter() - start, peak / 1e9


def _uncompressed_gb(path: Path) -> float:
    """Size of the CSV inside a gzip file, streamed (the gzip trailer wraps at 4 GiB)."""
    import gzip

    total = 0
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(1 << 24):
            total += len(chunk)
    return total / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--admissions", type=int, nargs="+", default=[2000])
    parser.add_argument("--other-notes", type=float, default=30.0)
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to write (default: a temporary folder, removed)",
    )
    args = parser.parse_args()
    cec = [sys.executable, "-m", "cec.cli"]
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        print(
            "admissions  NOTEEVENTS_rows  NOTEEVENTS_GB  gz_GB  synth_s  synth_rows/s  "
            "synth_peak_GB  prepare_s  prepare_rows/s  prepare_peak_GB"
        )
        for n in args.admissions:
            mimic = Path(tmp) / f"mimic_{n}"
            synth_s, synth_gb = run_measured(
                [
                    *cec,
                    "synth-mimic",
                    "--out",
                    str(mimic),
                    "--admissions",
                    str(n),
                    "--other-notes",
                    str(args.other_notes),
                    "--quiet",
                ]
            )
            manifest = json.loads((mimic / "synth_manifest.json").read_text())
            rows = manifest["rows"]["NOTEEVENTS"]
            all_rows = sum(
                manifest["rows"][t] for t in ("NOTEEVENTS", "DIAGNOSES_ICD", "PROCEDURES_ICD")
            )
            size = sum(p.stat().st_size for p in mimic.glob("*.csv.gz")) / 1e9
            raw = _uncompressed_gb(mimic / "NOTEEVENTS.csv.gz")
            prep_s, prep_gb = run_measured(
                [
                    *cec,
                    "prepare",
                    "--mimic-dir",
                    str(mimic),
                    "--codes",
                    str(REPO / "config" / "codes" / "top50_codes.txt"),
                    "--splits",
                    str(mimic / "splits" / "mimic3_50"),
                    "--out",
                    str(Path(tmp) / f"d_{n}"),
                    "--quiet",
                ]
            )
            print(
                f"{n:>10}  {rows:>15}  {raw:13.2f}  {size:5.2f}  {synth_s:7.1f}  "
                f"{all_rows / synth_s:12.0f}  {synth_gb:13.2f}  {prep_s:9.1f}  "
                f"{all_rows / prep_s:14.0f}  {prep_gb:15.2f}",
                flush=True,
            )
            for p in mimic.iterdir():
                if p.is_file():
                    p.unlink()


if __name__ == "__main__":
    main()
