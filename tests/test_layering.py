"""What the stages share lives below them: no stage imports another stage, and the shared
layer imports no stage. Read from the source with `ast` (every import, also the ones inside
functions), so a lazy import cannot hide a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# a stage: the modules one step of the workflow owns
STAGES = {
    "cec.synth": "synthetic data",
    "cec.datasets.mimic3": "data",
    "cec.datasets.mimic4": "data",
    "cec.datasets.assembly": "data",
    "cec.datasets.sources": "data",
    "cec.concepts": "concepts",
    "cec.concepts.coverage": "concepts",
    "cec.stage1": "stage 1",
    "cec.stage2": "stage 2",
    "cec.evaluation": "evaluation",
}
# applications on top of the stages: they may use any of them
ON_TOP = {"cec.cli", "cec.coder"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _stage(module: str) -> str | None:
    for prefix, stage in STAGES.items():
        if module == prefix or module.startswith(prefix + "."):
            return stage
    return None


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name == "cec" or name.startswith("cec.")}


def layering_violations() -> list[str]:
    problems = []
    for path in sorted((SRC / "cec").rglob("*.py")):
        module = _module(path)
        if module in ON_TOP:
            continue
        own = _stage(module)
        for name in sorted(_imports(path)):
            other = _stage(name)
            if other is not None and other != own:
                layer = f"stage {own!r}" if own else "the shared layer"
                problems.append(f"{module} ({layer}) imports {name} (stage {other!r})")
    return problems


def test_no_stage_imports_another_and_the_shared_layer_imports_none() -> None:
    problems = layering_violations()
    assert not problems, "\n".join(problems)


def test_the_check_sees_a_lazy_cross_stage_import(tmp_path: Path) -> None:
    """The walk must find imports inside functions, where a shortcut would hide them."""
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from cec.stage1.run import train_concept_model\n")
    assert "cec.stage1.run" in _imports(path)
    assert _stage("cec.stage1.run") == "stage 1" and _stage("cec.llm.yesno") is None
