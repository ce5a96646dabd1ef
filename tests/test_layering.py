"""The packages are layers, and data flows one way through them: each package imports
only from the layers below it (or from itself), and no stage imports another stage. Read
from the source with `ast` (every import, also the ones inside functions), so a lazy
import cannot hide a dependency. docs/layout.md draws the same picture."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# lowest first: (what the layer is, its packages or top-level modules)
LAYERS: list[tuple[str, frozenset[str]]] = [
    ("plumbing", frozenset({"cec.plumbing"})),
    ("ICD vocabularies", frozenset({"cec.icd"})),
    ("MIMIC readers", frozenset({"cec.readers"})),
    ("shared by the stages", frozenset({"cec.llm", "cec.sections", "cec.bm25"})),
    (
        "stages",
        frozenset(
            {
                "cec.synth",
                "cec.datasets",
                "cec.concepts",
                "cec.stage1",
                "cec.stage2",
                "cec.evaluation",
                "cec.retrieval",
                "cec.baseline",
            }
        ),
    ),
    ("applications", frozenset({"cec.job_params", "cec.cli", "cec.coder"})),
]
STAGES = LAYERS[4][1]
MAX_TOP_LEVEL_MODULES = 8


def _module(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _unit(module: str) -> str | None:
    """The package or top-level module of the layer table that holds `module`."""
    for _, units in LAYERS:
        for unit in units:
            if module == unit or module.startswith(unit + "."):
                return unit
    return None


def _layer(unit: str) -> int:
    return next(i for i, (_, units) in enumerate(LAYERS) if unit in units)


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
        if module == "cec":
            continue
        own = _unit(module)
        if own is None:
            problems.append(f"{module} is in no layer (tests/test_layering.py LAYERS)")
            continue
        for name in sorted(_imports(path)):
            other = _unit(name)
            if other is None or other == own:
                continue
            if _layer(other) > _layer(own):
                problems.append(
                    f"{module} ({LAYERS[_layer(own)][0]}) imports {name} "
                    f"({LAYERS[_layer(other)][0]}), a layer above it"
                )
            elif own in STAGES and other in STAGES:
                problems.append(f"{module} (stage {own}) imports {name} (stage {other})")
    return problems


def test_each_package_imports_only_the_layers_below_it() -> None:
    problems = layering_violations()
    assert not problems, "\n".join(problems)


def test_the_top_level_holds_few_modules() -> None:
    top = sorted(p.name for p in (SRC / "cec").glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def test_the_check_sees_a_lazy_cross_stage_import(tmp_path: Path) -> None:
    """The walk must find imports inside functions, where a shortcut would hide them."""
    path = tmp_path / "x.py"
    path.write_text("def f():\n    from cec.stage1.run import train_concept_model\n")
    assert "cec.stage1.run" in _imports(path)
    assert _unit("cec.stage1.run") == "cec.stage1" and _unit("cec.llm.yesno") == "cec.llm"
    assert _layer("cec.plumbing") < _layer("cec.readers") < _layer("cec.stage1")
