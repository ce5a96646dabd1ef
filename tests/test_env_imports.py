"""Each rule's code loads only what its conda env installs, checked on the real tiny run.

Every job logs the third-party packages it imported (`cec.plumbing.logs.MODULES_LINE`). Each of
those that this project declares (the core and every family's extra in pyproject.toml)
must come from the job's env: the core and the env's extra (envs/*.yaml) with everything
those require, or Snakemake, which runs the script (its wrapper imports Snakemake into the
job). A data rule that pulled in torch, or an evaluation rule that needed transformers,
fails here. Packages the project does not declare are left out: the test venv holds every
family, so a library's optional import (httpx of sniffio, say) finds what a slim env
would not have, and the library does without it there. The same holds for a declared
package that a provided library names among its extras (pandas imports the data family's
pyarrow when present).
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from cec.plumbing.logs import MODULES_LINE
from tests.conftest import REPO
from tests.test_envs import env_packages
from tests.tiny_workflow import TinyRun

pytestmark = pytest.mark.integration


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def closure(name: str) -> frozenset[str]:
    """A distribution and every distribution it requires (extras' requirements left out)."""
    seen: set[str] = set()
    todo = [_norm(name)]
    while todo:
        dist = todo.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        for spec in requires:
            req = Requirement(spec)
            if req.marker is not None and "extra" in str(req.marker):
                continue
            todo.append(_norm(req.name))
    return frozenset(seen)


def rule_envs() -> dict[str, str]:
    envs: dict[str, str] = {}
    for smk in (REPO / "rules").glob("*.smk"):
        rule = None
        for line in smk.read_text().splitlines():
            found = re.match(r"rule (\w+):", line)
            rule = found.group(1) if found else rule
            env = re.search(r'"\.\./envs/(\w+)\.yaml"', line)
            if env and rule:
                envs[rule] = env.group(1)
    return envs


@cache
def optional_requirements(name: str) -> frozenset[str]:
    """What a distribution names under its extras: the packages it imports when present
    and does without otherwise (pandas' pyarrow)."""
    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return frozenset()
    return frozenset(
        _norm(Requirement(spec).name)
        for spec in requires
        if Requirement(spec).marker is not None and "extra" in str(Requirement(spec).marker)
    )


def provided(env: str) -> set[str]:
    packages, _ = env_packages(REPO / "envs" / f"{env}.yaml")
    out = set(closure("snakemake")) | {"cec"}
    for name in packages:
        out |= closure(name)
    return out


def tolerated(env: str) -> set[str]:
    """The env's packages and their optional imports: a job of an env without pyarrow
    still runs, pandas merely skips it; a dependency of our own code is never optional."""
    out = provided(env)
    for name in list(out):
        if name != "cec":
            out |= optional_requirements(name)
    return out


def declared() -> set[str]:
    """Every package the project declares for the workflow: the core and the families."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in ("data", "api", "llm", "eval", "workflow"):
        specs += project["optional-dependencies"][extra]
    return {_norm(Requirement(s).name) for s in specs if not s.startswith("cec[")}


def test_every_job_loads_only_what_its_env_installs(tiny_run: TinyRun) -> None:
    tiny_run.require_success()
    ours = declared()
    logs = tiny_run.work / "results" / "logs"
    dist_of = {m: [_norm(d) for d in ds] for m, ds in metadata.packages_distributions().items()}
    envs = rule_envs()
    checked, problems = 0, []
    for rule, env in sorted(envs.items()):
        allowed = tolerated(env)
        paths = sorted((logs / rule).rglob("*.log")) + sorted(logs.glob(f"{rule}.log"))
        for path in paths:
            lines = [x for x in path.read_text().splitlines() if MODULES_LINE in x]
            assert lines, f"{path}: no '{MODULES_LINE}' line"
            modules = lines[-1].split(MODULES_LINE, 1)[1].split()
            for module in modules:
                dists = dist_of.get(module)
                if dists and set(dists) & ours and not set(dists) & allowed:
                    problems.append(f"{rule} ({env}): {module} from {dists} ({path.name})")
            checked += 1
    assert checked >= 20, checked
    assert not problems, "\n".join(problems)
    assert "torch" not in provided("data") and "torch" in provided("llm")
    assert "torch" not in tolerated("data") and "pyarrow" in tolerated("llm")
    assert {"torch", "openai", "matplotlib", "bm25s"} <= ours
