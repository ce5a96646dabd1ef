"""A config whose keys are only reordered re-runs nothing.

Snakemake re-runs a job whose params print differently, and a YAML file rewritten by a
tool (`yaml.safe_dump` sorts keys) or by hand reorders its mappings. Every rule's params
come from `cec.job_params`, which builds them in an order of its own, and the tables list
the datasets in an order fixed by the datasets themselves. Here every mapping of a config,
at every depth, is reversed and, separately, sorted, and a real dry run must schedule
nothing: on the finished tiny run for its own config, and for each shipped config on a
copy of the workflow whose every output was marked done (`snakemake --touch`) under the
config as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, WORKFLOW_CONFIGS
from tests.tiny_workflow import CONFIG, TinyRun, copy_workflow, snakemake

pytestmark = pytest.mark.integration

Reorder = Callable[[list[str]], list[str]]
ORDERS: dict[str, Reorder] = {"reversed": lambda keys: keys[::-1], "sorted": sorted}


def reordered(value: Any, order: Reorder) -> Any:
    """`value` with the keys of every mapping, at every depth, in `order`."""
    if isinstance(value, dict):
        return {key: reordered(value[key], order) for key in order(list(value))}
    if isinstance(value, list):
        return [reordered(item, order) for item in value]
    return value


def _mapping_orders(value: Any) -> list[list[str]]:
    """The key order of every mapping in `value`, depth first."""
    if isinstance(value, dict):
        return [list(value), *(o for key in value for o in _mapping_orders(value[key]))]
    if isinstance(value, list):
        return [o for item in value for o in _mapping_orders(item)]
    return []


def scheduled_jobs(dry_run_output: str) -> list[str]:
    """The rules of the jobs a dry run lists, `all` left out."""
    rules = re.findall(r"^(?:local)?rule (\w+):$", dry_run_output, flags=re.M)
    return [rule for rule in rules if rule != "all"]


def _write_reordered(source: Path, target: Path, order: Reorder) -> None:
    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    changed = reordered(config, order)
    assert changed == config  # the same mapping ...
    if order is ORDERS["reversed"]:  # ... in another order, at the top and below
        before, after = _mapping_orders(config), _mapping_orders(changed)
        assert sum(a != b for a, b in zip(before, after, strict=True)) > 1
    target.write_text(yaml.safe_dump(changed, sort_keys=False), encoding="utf-8")


def test_reordering_reverses_every_level() -> None:
    config = {"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": 0}
    back = reordered(config, ORDERS["reversed"])
    assert _mapping_orders(back) == [["a", "b"], ["x", "y"], ["p", "q"]]
    assert scheduled_jobs("rule all:\nlocalrule make_table:\nrule synth_mimic:\n") == [
        "make_table",
        "synth_mimic",
    ]


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_a_reordered_tiny_config_reruns_nothing(
    tiny_run: TinyRun, tmp_path: Path, order: str
) -> None:
    tiny_run.require_success()
    work = tiny_run.work
    path = tmp_path / "reordered.yaml"
    _write_reordered(work / CONFIG, path, ORDERS[order])
    dry = snakemake(["all", "-n", "--configfile", str(path)], work)
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    jobs = scheduled_jobs(dry.stdout)
    assert not jobs, f"{len(jobs)} jobs re-run: {sorted(set(jobs))}\n{dry.stdout[-3000:]}"


def _stub_inputs(work: Path, output: str) -> bool:
    """Create the files a dry run reports missing (model folders, real MIMIC tables, split
    files) inside the copy; False when it reports none."""
    missing = re.findall(r"^Missing input files for rule \w+:.*?affected files:\n((?:\s+\S.*\n)+)",
                         output, flags=re.M | re.S)  # fmt: skip
    made = False
    for block in missing:
        for line in block.splitlines():
            path = work / line.strip()  # an absolute path stays one
            assert path.is_relative_to(work), f"a stub outside the copy: {path}"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
                made = True
    return made


def _directory_outputs() -> list[re.Pattern[str]]:
    """The outputs the rules declare as `directory(...)`, as patterns over paths."""
    found = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for pattern in re.findall(r'directory\(\s*"([^"]+)"', smk.read_text(encoding="utf-8")):
            parts = re.split(r"(\{\w+\})", pattern)
            found.append(
                re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts))
            )
    return found


def _make_outputs(work: Path, dry_run_output: str) -> int:
    """Create every output a `--forceall` dry run lists (empty files, or folders where the
    rule declares one), so that `--touch` can mark them done; how many."""
    folders = _directory_outputs()
    made = 0
    for line in re.findall(r"^\s+output: (.+)$", dry_run_output, flags=re.M):
        for name in line.split(", "):
            path = work / name
            if path.exists():
                continue
            if any(p.fullmatch(name) for p in folders):
                path.mkdir(parents=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("")
            made += 1
    return made


def _make_portable(work: Path) -> None:
    """Move the absolute paths of the copy's configs (model folders on a cluster) into the
    copy, so that stubs can stand in for them; keys stay in their order."""
    for path in [*(work / "config").glob("*.yaml"), *(work / "tests" / "config").glob("*.yaml")]:
        text = path.read_text(encoding="utf-8")
        moved = re.sub(r"(:\s+)(/[\w./-]+)", lambda m: f"{m.group(1)}{work}/abs{m.group(2)}", text)
        path.write_text(moved, encoding="utf-8")


# the tiny config is tested on its real run above
SHIPPED = [path for path in WORKFLOW_CONFIGS if path.parent == REPO / "config"]


def _touched_copy(tmp: Path, config: Path) -> tuple[Path, Path]:
    """A copy of the workflow whose every output `config` plans is marked done under the
    config as written; (the copy, its copy of the config)."""
    work = copy_workflow(tmp / "wf")
    _make_portable(work)
    path = work / config.relative_to(REPO)
    args = ["all", "--configfile", str(path)]
    for _ in range(20):  # stub what the dry run misses, until it plans
        dry = snakemake([*args, "-n", "--forceall"], work)
        if dry.returncode == 0 or not _stub_inputs(work, dry.stdout + dry.stderr):
            break
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert _make_outputs(work, dry.stdout) > 0
    touched = snakemake([*args, "--touch", "--forceall", "--cores", "1"], work)
    assert touched.returncode == 0, touched.stdout[-3000:] + touched.stderr[-3000:]
    return work, path


@pytest.fixture(scope="module")
def touched_copies(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Future]]:
    """Every shipped config's touched copy, prepared side by side: Snakemake's `--touch`
    waits 0.1 s per job (a real config plans hundreds), so the copies wait together. Each
    test takes its own copy's result, so a failure is reported by that config's test."""
    root = tmp_path_factory.mktemp("touched")
    with ThreadPoolExecutor(max_workers=len(SHIPPED)) as pool:
        yield {c.name: pool.submit(_touched_copy, root / c.stem, c) for c in SHIPPED}


@pytest.mark.parametrize("config", SHIPPED, ids=lambda p: p.name)
def test_every_config_reordered_reruns_nothing(
    touched_copies: dict[str, Future], config: Path
) -> None:
    work, path = touched_copies[config.name].result()
    # reversed: every mapping of two or more keys changes order (sorted may leave some)
    for name in ("reversed",):
        again = work / f"{name}.yaml"
        _write_reordered(path, again, ORDERS[name])
        dry = snakemake(["all", "-n", "--configfile", str(again)], work)
        assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
        jobs = scheduled_jobs(dry.stdout)
        assert not jobs, f"{name}: {len(jobs)} jobs re-run: {sorted(set(jobs))}"
