"""The per-rule conda environments pin what pyproject.toml pins, and every rule names one."""

from __future__ import annotations

import re
import tomllib

import yaml

from tests.conftest import REPO

NAME = re.compile(r"^([A-Za-z0-9_.\-]+)(.*)$")


def _split(spec: str) -> tuple[str, str]:
    match = NAME.match(spec.replace(" ", ""))
    assert match, spec
    return match.group(1).lower().replace("_", "-"), match.group(2)


def _conda_spec(spec: str) -> tuple[str, str]:
    name, rest = _split(spec)
    if rest.startswith("=") and not rest.startswith("=="):  # conda's "=1.2" is "==1.2"
        rest = "=" + rest
    return name, rest


def env_packages(path) -> tuple[dict[str, str], str]:  # noqa: ANN001
    """An env's packages (name -> version spec) and the extra its `-e ../[extra]` names."""
    env = yaml.safe_load(path.read_text())
    specs: list[str] = []
    extra = ""
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for spec in dep.get("pip", []):
                if spec.startswith("-e"):
                    found = re.fullmatch(r"-e \.\./\[(\w+)\]", spec)
                    assert found, f"{path.name}: {spec!r} names no extra"
                    extra = found.group(1)
                else:
                    specs.append(spec)
        elif not dep.startswith(("python", "pip")):
            specs.append(dep)
    return dict(_conda_spec(s) for s in specs), extra


def test_each_env_installs_the_core_and_its_own_extra_only() -> None:
    """Pins agree with pyproject.toml, and an env holds exactly the core and its family's
    extra (the data rules' env carries no torch)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = dict(_split(s) for s in project["dependencies"])
    extras = project["optional-dependencies"]
    for path in sorted((REPO / "envs").glob("*.yaml")):
        packages, extra = env_packages(path)
        assert extra == path.stem, f"{path.name} installs the extra {extra!r}"
        wanted = dict(core, **dict(_split(s) for s in extras[extra]))
        assert packages == wanted, f"{path.name}: {packages} vs core + [{extra}] {wanted}"
    assert "torch" not in dict(_split(s) for s in project["dependencies"])
    assert "torch" not in env_packages(REPO / "envs" / "data.yaml")[0]


def test_every_rule_has_a_conda_env() -> None:
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        rules = re.findall(r"^rule (\w+):", text, flags=re.M)
        blocks = re.split(r"^rule \w+:", text, flags=re.M)[1:]
        for rule, block in zip(rules, blocks, strict=True):
            assert "conda:" in block, f"{smk.name}: rule {rule} has no conda: directive"
            env = re.search(r'conda:\s*\n\s*"\.\./(envs/\w+\.yaml)"', block)
            assert env and (REPO / env.group(1)).exists(), f"{smk.name}: rule {rule}"
