"""The `cec` command: every workflow step is also a command a person can run by hand."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cec.errors import InputError


def _sizes(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TRAIN,DEV,TEST counts, got {text!r}") from None
    if len(parts) != 3 or any(p < 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected three counts TRAIN,DEV,TEST, got {text!r}")
    return parts  # type: ignore[return-value]


def _fractions(text: str) -> dict[str, float]:
    try:
        values = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected TRAIN,DEV,TEST fractions, got {text!r}"
        ) from None
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions, got {text!r}")
    return dict(zip(("train", "dev", "test"), values, strict=True))


def _cmd_synth(args: argparse.Namespace) -> int:
    if args.version == "iv":
        return _cmd_synth_iv(args)
    if args.icd9_fraction is not None:
        raise InputError("--icd9-fraction is for --version iv (MIMIC-III is all ICD-9)")
    from cec.synth.writer import write_synthetic_mimic

    manifest = write_synthetic_mimic(
        args.out,
        args.admissions,
        args.seed,
        top50_sizes=args.top50_split,
        rare_sizes=args.rare50_split,
        other_notes_per_admission=30.0 if args.other_notes is None else args.other_notes,
        progress=not args.quiet,
    )
    rows = manifest["rows"]
    print(
        f"wrote synthetic MIMIC-III to {args.out}: {manifest['admissions']} admissions, "
        f"{rows['NOTEEVENTS']} NOTEEVENTS rows, {rows['DIAGNOSES_ICD']} DIAGNOSES_ICD rows, "
        f"{rows['PROCEDURES_ICD']} PROCEDURES_ICD rows in {manifest['seconds']} s"
    )
    return 0


def _cmd_synth_iv(args: argparse.Namespace) -> int:
    from cec.synth.mimic4_writer import DEFAULT_ICD9_FRACTION, write_synthetic_mimic4

    iii_only = {
        "--top50-split": args.top50_split,
        "--rare50-split": args.rare50_split,
        "--other-notes": args.other_notes,
    }
    given = [flag for flag, value in iii_only.items() if value is not None]
    if given:
        raise InputError(f"{', '.join(given)}: MIMIC-III options, not for --version iv")
    fraction = DEFAULT_ICD9_FRACTION if args.icd9_fraction is None else args.icd9_fraction
    manifest = write_synthetic_mimic4(
        args.out,
        args.admissions,
        args.seed,
        icd9_fraction=fraction,
        progress=not args.quiet,
    )
    rows = manifest["rows"]
    by_version = manifest["admissions_by_version"]
    print(
        f"wrote synthetic MIMIC-IV to {args.out}: {manifest['admissions']} admissions "
        f"({by_version['9']} ICD-9, {by_version['10']} ICD-10), {rows['discharge']} discharge "
        f"rows, {rows['diagnoses_icd']} diagnoses_icd rows, {rows['procedures_icd']} "
        f"procedures_icd rows in {manifest['seconds']} s"
    )
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from cec.splits import find_split_files

    if (args.mimic_dir is None) == (args.mimic4_dir is None):
        raise InputError("give --mimic-dir (MIMIC-III) or --mimic4-dir (MIMIC-IV), not both")
    if args.mimic4_dir is not None:
        return _prepare_mimic4(args)
    for flag, value in (("--icd-version", args.icd_version), ("--edin-split", args.edin_split)):
        if value is not None:
            raise InputError(f"{flag} is for --mimic4-dir (MIMIC-III is all ICD-9)")
    from cec.prepare import PrepareOptions, prepare_dataset

    opts = PrepareOptions(
        seed=args.seed,
        exclude_error_notes=not args.keep_error_notes,
        progress=not args.quiet,
        code_format=args.code_format,
    )
    if args.fractions:
        opts.fractions = args.fractions
    split_files = find_split_files(args.splits) if args.splits is not None else None
    report = prepare_dataset(args.mimic_dir, args.codes, args.out, split_files, opts)
    return _prepared(args, report)


def _prepare_mimic4(args: argparse.Namespace) -> int:
    from cec.prepare_mimic4 import Mimic4Options, prepare_mimic4_dataset
    from cec.splits import find_split_files

    if args.keep_error_notes or args.code_format != "exact":
        raise InputError("--keep-error-notes and --code-format are for MIMIC-III (--mimic-dir)")
    if args.splits is not None and args.edin_split is not None:
        raise InputError("give --splits or --edin-split, not both")
    opts = Mimic4Options(version=args.icd_version or 10, seed=args.seed, progress=not args.quiet)
    if args.fractions:
        opts.fractions = args.fractions
    report = prepare_mimic4_dataset(
        args.mimic4_dir,
        args.codes,
        args.out,
        opts,
        split_file=args.edin_split,
        split_files=find_split_files(args.splits) if args.splits is not None else None,
    )
    return _prepared(args, report)


def _prepared(args: argparse.Namespace, report: dict[str, Any]) -> int:
    sizes = report["split"]["sizes"]
    print(
        f"wrote {args.out}: train {sizes['train']}, dev {sizes['dev']}, test {sizes['test']} "
        f"admissions, {report['n_codes']} codes ({report['split']['source']})"
    )
    for warning in report["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cec", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser(
        "synth-mimic", help="write a synthetic MIMIC-III v1.4 or MIMIC-IV v2.2 (CSV.gz)"
    )
    synth.add_argument(
        "--version",
        choices=["iii", "iv"],
        default="iii",
        help="iii: MIMIC-III v1.4 (default); iv: MIMIC-IV v2.2 hosp/ + MIMIC-IV-Note note/, "
        "ICD-9 and ICD-10 admissions, Edin et al.-style split files",
    )
    synth.add_argument("--out", type=Path, required=True, help="output directory")
    synth.add_argument("--admissions", type=int, required=True, help="number of admissions")
    synth.add_argument("--seed", type=int, default=13)
    synth.add_argument(
        "--top50-split",
        type=_sizes,
        default=None,
        metavar="TRAIN,DEV,TEST",
        help="admissions per split of the MIMIC-III-50 style split files "
        "(default: caml-mimic's shares of the eligible admissions)",
    )
    synth.add_argument(
        "--rare50-split",
        type=_sizes,
        default=None,
        metavar="TRAIN,DEV,TEST",
        help="admissions per split of the rare-50 style split files "
        "(default: KEPT's 249,20,142, scaled down for small N)",
    )
    synth.add_argument(
        "--other-notes",
        type=float,
        default=None,
        help="mean number of non-discharge notes per admission (MIMIC-III: ~35; default 30)",
    )
    synth.add_argument(
        "--icd9-fraction",
        type=float,
        default=None,
        metavar="F",
        help="--version iv: share of the admissions coded in ICD-9, the stays before the "
        "October-2015 switch (default 0.4)",
    )
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_cmd_synth)

    prep = sub.add_parser("prepare", help="MIMIC-III or MIMIC-IV tables -> one dataset")
    prep.add_argument("--mimic-dir", type=Path, help="MIMIC-III v1.4: the folder of its CSVs")
    prep.add_argument(
        "--mimic4-dir", type=Path, help="MIMIC-IV v2.2: the folder holding hosp/ and note/"
    )
    prep.add_argument(
        "--icd-version",
        type=int,
        choices=[9, 10],
        help="MIMIC-IV: the ICD version of the dataset's admissions and labels (default 10)",
    )
    prep.add_argument(
        "--edin-split",
        type=Path,
        help="MIMIC-IV: Edin et al.'s split file (.feather, or CSV with _id,split)",
    )
    prep.add_argument("--codes", type=Path, required=True, help="code list of the version")
    prep.add_argument(
        "--splits",
        type=Path,
        default=None,
        help="directory with {train,dev,test}_*.csv HADM_ID lists",
    )
    prep.add_argument("--out", type=Path, required=True, help="dataset output directory")
    prep.add_argument("--seed", type=int, default=13, help="seed of the patient-level split")
    prep.add_argument(
        "--fractions",
        type=_fractions,
        default=None,
        metavar="TRAIN,DEV,TEST",
        help="shares of the patient-level split (default 0.7,0.1,0.2; MIMIC-IV "
        "0.65,0.1,0.25, stratified by each patient's rarest label)",
    )
    prep.add_argument(
        "--keep-error-notes", action="store_true", help="keep discharge summaries flagged ISERROR=1"
    )
    prep.add_argument(
        "--code-format",
        choices=["exact", "caml"],
        default="exact",
        help="label strings: ICD-9-CM's dotted codes (exact), or caml-mimic's, as the "
        "literature's code lists have them (caml: procedure 0407 reads 40.7)",
    )
    prep.add_argument("--quiet", action="store_true", help="no progress bars")
    prep.set_defaults(func=_cmd_prepare)

    code = sub.add_parser(
        "code",
        help="code a new note with the trained models (local only) and show the evidence",
    )
    code.add_argument("note", type=Path, help="a UTF-8 text file holding one note")
    code.add_argument("--dataset", required=True, help="label set: a dataset of the config")
    code.add_argument("--backbone", required=True, help="a backbone of stage2.backbones")
    code.add_argument("--configfile", type=Path, default=Path("config/config.yaml"))
    code.add_argument("--results", type=Path, default=Path("results"), help="workflow outputs")
    code.add_argument("--seed", type=int, help="label model seed (default: the first)")
    code.add_argument("--k", type=int, default=6, help="concepts per code (Table 2's CEC: 6)")
    code.add_argument("--threshold", type=float, default=0.5, help="print codes above this")
    code.add_argument("--all", action="store_true", help="print every code, not only those above")
    code.add_argument("--truncate", action="store_true", help="cut a note over the budget")
    code.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    code.add_argument("--json", action="store_true", help="print JSON (every code)")
    code.set_defaults(func=_cmd_code)

    ev = sub.add_parser("evaluate", help="metrics of one prediction file (KEPT/caml-mimic)")
    ev.add_argument("--pred", type=Path, required=True, help="hadm_id code prob (test)")
    ev.add_argument("--gold", type=Path, required=True, help="the split's .jsonl")
    ev.add_argument("--dev-pred", type=Path, help="dev predictions: tune the threshold there")
    ev.add_argument("--dev-gold", type=Path, help="the dev split's .jsonl")
    ev.add_argument("--codes", type=Path, help="codes.tsv (default: the codes in --pred)")
    ev.add_argument("--bootstrap", type=int, default=1000, help="resamples (0: none)")
    ev.add_argument("--seed", type=int, default=13, help="bootstrap seed")
    ev.add_argument("--out", type=Path, required=True, help="metrics JSON")
    ev.set_defaults(func=_cmd_evaluate)
    return parser


def _require_file(path: Path | None, what: str) -> None:
    if path is None:
        return
    if not path.exists():
        raise InputError(f"no such {what} file", file=path)
    if not path.is_file():
        raise InputError(f"the {what} file is a folder, not a file", file=path)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cec.evaluation.metrics import evaluate_files, prediction_codes
    from cec.evaluation.run import label_codes
    from cec.io import check_output_file, write_json

    if (args.dev_pred is None) != (args.dev_gold is None):
        raise InputError("give both --dev-pred and --dev-gold, or neither")
    for path, what in (
        (args.pred, "prediction"),
        (args.gold, "gold"),
        (args.dev_pred, "dev prediction"),
        (args.dev_gold, "dev gold"),
        (args.codes, "code table"),
    ):
        _require_file(path, what)
    check_output_file(args.out)
    # without --codes the label set is what the prediction file names: read (and check)
    # the prediction file first, so that its faults are blamed on it and not on the gold
    codes = label_codes(args.codes) if args.codes is not None else prediction_codes(args.pred)
    result = evaluate_files(
        args.pred,
        args.gold,
        codes,
        dev_pred=args.dev_pred,
        dev_gold=args.dev_gold,
        resamples=args.bootstrap,
        seed=args.seed,
    )
    write_json(args.out, result)
    print(
        f"micro F1 {result['f1_micro']:.4f} at threshold {result['threshold']:.4g} "
        f"({result['threshold_source']}); macro AUC {result['auc_macro']}; "
        f"{result['n_docs']} admissions x {result['n_codes']} codes -> {args.out}"
    )
    return 0


def _cmd_code(args: argparse.Namespace) -> int:
    from cec.code_note import code_note, format_result
    from cec.config import load_config

    result = code_note(
        args.note,
        load_config(args.configfile),
        args.dataset,
        args.backbone,
        seed=args.seed,
        k=args.k,
        results=args.results,
        truncate=args.truncate,
        device=args.device,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_result(result, args.threshold, args.all))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args))
    except InputError as exc:
        print(f"cec {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"cec {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
