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


def test_env_pins_agree_with_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = dict(_split(s) for s in project["dependencies"])
    checked = 0
    for path in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(path.read_text())
        specs: list[str] = []
        for dep in env["dependencies"]:
            if isinstance(dep, dict):
                specs += [s for s in dep.get("pip", []) if not s.startswith("-e")]
            elif not dep.startswith(("python", "pip")):
                specs.append(dep)
        for spec in specs:
            name, version = _conda_spec(spec)
            assert name in pins, f"{path.name}: {name} is not a dependency in pyproject.toml"
            assert version == pins[name], f"{path.name}: {name}{version} vs pyproject {pins[name]}"
            checked += 1
        pip_lists = [d.get("pip", []) for d in env["dependencies"] if isinstance(d, dict)]
        assert any("-e ../" in pips for pips in pip_lists)
    assert checked >= 15


def test_every_rule_has_a_conda_env() -> None:
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        rules = re.findall(r"^rule (\w+):", text, flags=re.M)
        blocks = re.split(r"^rule \w+:", text, flags=re.M)[1:]
        for rule, block in zip(rules, blocks, strict=True):
            assert "conda:" in block, f"{smk.name}: rule {rule} has no conda: directive"
            env = re.search(r'conda:\s*\n\s*"\.\./(envs/\w+\.yaml)"', block)
            assert env and (REPO / env.group(1)).exists(), f"{smk.name}: rule {rule}"
