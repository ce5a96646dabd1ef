"""The `cec` command: every workflow step is also a command a person can run by hand."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from cec.plumbing.errors import InputError, os_error_message

# --------------------------------------------------------------------- option values
# Every numeric option is parsed by one of the functions below, so that a value that makes
# no sense (NaN, infinity, a negative count, a share above 1) is refused where it is typed,
# with argparse's "argument --X: ..." naming the option, in one line (see `_Parser`).

SEED_MAX = 2**32 - 1  # numpy's and torch's seeds; the configs' seeds are the same kind
ADMISSIONS_MIN = 20  # cec.synth.plan.MIN_ADMISSIONS (a test keeps the two equal)
ADMISSIONS_MAX = 1_000_000  # MIMIC-IV v2.2 has about 430,000 admissions
SPLIT_SIZE_MAX = ADMISSIONS_MAX
OTHER_NOTES_MAX = 1000.0  # per admission; MIMIC-III has about 35
NOTE_WORDS_MAX = 100000.0  # mean words per discharge summary; MIMIC-III's: about 1,500
BOOTSTRAP_MAX = 100_000  # each resample recomputes every metric
K_MAX = 99  # the methods' cec_k1 .. cec_k99 (the config schema)
SHARE_TOLERANCE = 1e-6  # what the config check allows split_fractions' sum (cec.plumbing.config)


class _UsageError(Exception):
    """A command line argparse refused; `main` prints it as one line and returns 2."""


class _Parser(argparse.ArgumentParser):
    """argparse's own errors in cec's one-line form, `cec CMD: error: ...`, returned as
    exit status 2 by `main` instead of a usage block and a SystemExit: every fault a
    user can cause reads the same, whichever layer finds it."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def _shown(text: str) -> str:
    """A command-line value as an error quotes it: escaped, and cut where it is long."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {_shown(text)}") from None


def _real(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {_shown(text)}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {_shown(text)}")
    return value


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An option type: a whole number in [low, high]."""

    def parse(text: str) -> int:
        value = _whole(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low} to {high}, got {value}"
            )
        return value

    return parse


def real_number(low: float, high: float) -> Callable[[str], float]:
    """An option type: a finite number in [low, high]."""

    def parse(text: str) -> float:
        value = _real(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected a number from {low:g} to {high:g}, got {value:g}"
            )
        return value

    return parse


seed_number = whole_number(0, SEED_MAX)


def _admissions(text: str) -> int:
    value = _whole(text)
    if value < ADMISSIONS_MIN:
        raise argparse.ArgumentTypeError(
            f"the synthetic MIMIC needs at least {ADMISSIONS_MIN} admissions, got {value}"
        )
    if value > ADMISSIONS_MAX:
        raise argparse.ArgumentTypeError(f"at most {ADMISSIONS_MAX} admissions, got {value}")
    return value


def split_sizes(train_min: int) -> Callable[[str], tuple[int, int, int]]:
    """An option type: TRAIN,DEV,TEST admission counts, each at least 1 (train at least
    `train_min`), as the config's top50_split and rare50_split."""

    def parse(text: str) -> tuple[int, int, int]:
        parts = text.split(",")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(
                f"expected three counts TRAIN,DEV,TEST, got {_shown(text)}"
            )
        sizes = tuple(_whole(p) for p in parts)
        for name, size, low in zip(("train", "dev", "test"), sizes, (train_min, 1, 1), strict=True):
            if not low <= size <= SPLIT_SIZE_MAX:
                raise argparse.ArgumentTypeError(
                    f"the {name} count must be a whole number from {low} to {SPLIT_SIZE_MAX}, "
                    f"got {size}"
                )
        return sizes  # type: ignore[return-value]

    return parse


def _fractions(text: str) -> dict[str, float]:
    """TRAIN,DEV,TEST shares of the patient-level split, as the config's split_fractions:
    each finite in [0, 1], train and test above 0, adding up to 1."""
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(
            f"expected three fractions TRAIN,DEV,TEST, got {_shown(text)}"
        )
    shares = dict(zip(("train", "dev", "test"), (_real(p) for p in parts), strict=True))
    for name, value in shares.items():
        if not 0.0 <= value <= 1.0 or (value == 0.0 and name != "dev"):
            low = "from 0" if name == "dev" else "above 0"
            raise argparse.ArgumentTypeError(
                f"the {name} share must be a number {low} to 1, got {value:g}"
            )
    total = sum(shares.values())
    if abs(total - 1.0) > SHARE_TOLERANCE:
        raise argparse.ArgumentTypeError(f"the shares add up to {total:g}, not 1")
    return shares


def _file_to_write(text: str) -> Path:
    """An output file's path: one ending in a slash names a folder (Path would drop the
    slash and write a file of the folder's name)."""
    if not text:
        raise argparse.ArgumentTypeError("empty: give the path of a file to write")
    if text.endswith(("/", os.sep)):
        raise argparse.ArgumentTypeError(
            f"ends in {text[-1]!r}, so it names a folder: give the path of a file to write"
        )
    return Path(text)


def _cmd_synth(args: argparse.Namespace) -> int:
    if args.version == "iv":
        return _cmd_synth_iv(args)
    if args.icd9_fraction is not None:
        raise InputError("--icd9-fraction is for --version iv (MIMIC-III is all ICD-9)")
    from cec.synth.mimic3_writer import write_synthetic_mimic

    manifest = write_synthetic_mimic(
        args.out,
        args.admissions,
        args.seed,
        top50_sizes=args.top50_split,
        rare_sizes=args.rare50_split,
        other_notes_per_admission=30.0 if args.other_notes is None else args.other_notes,
        note_words=args.note_words,
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
        "--note-words": args.note_words,
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
    from cec.datasets.sources import Source
    from cec.datasets.splits import find_split_files

    if (args.mimic_dir is None) == (args.mimic4_dir is None):
        raise InputError("give --mimic-dir (MIMIC-III) or --mimic4-dir (MIMIC-IV), not both")
    if args.mimic4_dir is not None:
        if args.keep_error_notes or args.code_format != "exact":
            raise InputError("--keep-error-notes and --code-format are for MIMIC-III (--mimic-dir)")
        if args.splits is not None and args.edin_split is not None:
            raise InputError("give --splits or --edin-split, not both")
        source, root = Source("mimic4", args.icd_version or 10), args.mimic4_dir
        options = source.options(seed=args.seed, fractions=args.fractions, progress=not args.quiet)
    else:
        for flag, value in (("--icd-version", args.icd_version), ("--edin-split", args.edin_split)):
            if value is not None:
                raise InputError(f"{flag} is for --mimic4-dir (MIMIC-III is all ICD-9)")
        source, root = Source("mimic3"), args.mimic_dir
        options = source.options(
            seed=args.seed,
            fractions=args.fractions,
            progress=not args.quiet,
            exclude_error_notes=not args.keep_error_notes,
            code_format=args.code_format,
        )
    report = source.prepare(
        root,
        args.codes,
        args.out,
        options,
        split_files=find_split_files(args.splits) if args.splits is not None else None,
        edin_split=args.edin_split,
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
    parser = _Parser(prog="cec", description=__doc__)
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
    synth.add_argument(
        "--admissions",
        type=_admissions,
        required=True,
        help=f"number of admissions ({ADMISSIONS_MIN} to {ADMISSIONS_MAX})",
    )
    synth.add_argument("--seed", type=seed_number, default=13)
    synth.add_argument(
        "--top50-split",
        type=split_sizes(1),
        default=None,
        metavar="TRAIN,DEV,TEST",
        help="admissions per split of the MIMIC-III-50 style split files, each at least 1 "
        "(default: caml-mimic's shares of the eligible admissions, never more than there are)",
    )
    synth.add_argument(
        "--rare50-split",
        type=split_sizes(2),
        default=None,
        metavar="TRAIN,DEV,TEST",
        help="admissions per split of the rare-50 style split files, train at least 2 "
        "(default: KEPT's 249,20,142, scaled down for small N to what the plan holds)",
    )
    synth.add_argument(
        "--other-notes",
        type=real_number(0.0, OTHER_NOTES_MAX),
        default=None,
        help="mean number of non-discharge notes per admission, 0 to "
        f"{OTHER_NOTES_MAX:g} (MIMIC-III: ~35; default 30)",
    )
    synth.add_argument(
        "--note-words",
        type=real_number(1.0, NOTE_WORDS_MAX),
        default=None,
        metavar="N",
        help="mean words per discharge summary (default: the generator's own, about 877; "
        "real MIMIC-III-50 ones: about 1,530, Mullenbach et al. 2018, Table 1); longer "
        "notes get neutral result and course lines",
    )
    synth.add_argument(
        "--icd9-fraction",
        type=real_number(0.0, 1.0),
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
    prep.add_argument(
        "--seed", type=seed_number, default=13, help="seed of the patient-level split"
    )
    prep.add_argument(
        "--fractions",
        type=_fractions,
        default=None,
        metavar="TRAIN,DEV,TEST",
        help="shares of the patient-level split (default 0.7,0.1,0.2; MIMIC-IV "
        "0.75,0.1,0.15, stratified by each patient's rarest label)",
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
    code.add_argument("--seed", type=seed_number, help="label model seed (default: the first)")
    code.add_argument(
        "--k",
        type=whole_number(1, K_MAX),
        default=6,
        help=f"concepts per code, 1 to {K_MAX} (Table 2's CEC: 6)",
    )
    code.add_argument(
        "--threshold", type=real_number(0.0, 1.0), default=0.5, help="print codes above this"
    )
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
    ev.add_argument(
        "--bootstrap",
        type=whole_number(0, BOOTSTRAP_MAX),
        default=1000,
        help=f"resamples (0: none; at most {BOOTSTRAP_MAX})",
    )
    ev.add_argument("--seed", type=seed_number, default=13, help="bootstrap seed")
    ev.add_argument("--out", type=_file_to_write, required=True, help="metrics JSON (a file)")
    ev.set_defaults(func=_cmd_evaluate)
    return parser


def _require_file(path: Path | None, what: str) -> None:
    if path is None:
        return
    if not path.exists():
        raise InputError(f"no such {what} file", file=path)
    if path.is_dir():
        raise InputError(f"the {what} file is a folder, not a file", file=path)
    if not path.is_file():
        raise InputError(f"the {what} file is not a regular file (a device or a pipe)", file=path)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two spellings name one file: the same path after symlinks and `..`, or one
    file under two names (a hard link)."""
    try:
        if a.exists() and b.exists() and os.path.samefile(a, b):
            return True
        return a.resolve() == b.resolve()
    except (OSError, RuntimeError):  # a symlink loop: no file to lose
        return False


def _check_metrics_output(out: Path, inputs: dict[str, Path | None]) -> None:
    """The metrics file must be a new or regular file that is none of the inputs: writing
    it replaces what is there whole (an input would be lost; a device such as /dev/full
    would be replaced by a file)."""
    from cec.plumbing.io import check_output_file

    for flag, path in inputs.items():
        if path is not None and _same_file(out, path):
            raise InputError(
                f"is the {flag} file: writing the metrics would destroy it; give another --out",
                file=out,
            )
    if out.exists() and not out.is_dir() and not out.is_file():
        raise InputError(
            "is not a regular file (a device or a pipe): give the path of a file to write",
            file=out,
        )
    check_output_file(out)


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cec.evaluation.metrics import evaluate_files, prediction_codes
    from cec.evaluation.run import label_codes
    from cec.plumbing.io import write_json

    if (args.dev_pred is None) != (args.dev_gold is None):
        raise InputError("give both --dev-pred and --dev-gold, or neither")
    inputs = (
        ("--pred", "prediction", args.pred),
        ("--gold", "gold", args.gold),
        ("--dev-pred", "dev prediction", args.dev_pred),
        ("--dev-gold", "dev gold", args.dev_gold),
        ("--codes", "code table", args.codes),
    )
    for _, what, path in inputs:
        _require_file(path, what)
    _check_metrics_output(args.out, {flag: path for flag, _, path in inputs})
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
    from cec.coder import code_note, format_result
    from cec.plumbing.config import load_config

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


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, naming the subcommand in an error about arguments it does not know."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        prog = f"{parser.prog} {args.command}"
        raise _UsageError(
            f"{prog}: error: unrecognized arguments: {' '.join(extra)} (see {prog} --help)"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = _parse(parser, argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
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
    except OSError as exc:
        message = os_error_message(exc, getattr(args, "out", None))
        print(f"cec {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
