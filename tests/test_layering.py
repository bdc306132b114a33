"""The package layering of STYLE.md "Target layout": arrows point toward cost and kr, nothing imports cli.

Read statically (every ``import`` statement, also those inside functions), so a late import cannot
hide a wrong arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dlora_sim"
SHARED = {"dlora_sim.errors", "dlora_sim.io"}

# area (a module or a package prefix) -> the project areas it may import besides itself and SHARED
ALLOWED = {
    # the cost model prices the job's KR schedule, which kr states once
    "dlora_sim.cost": {"dlora_sim.kr"},
    "dlora_sim.kr": set(),
    "dlora_sim.profile": set(),
    "dlora_sim.report": {"dlora_sim.profile"},
    # STYLE.md says cost and kr value types only; the scenario also validates its profile file
    # at the boundary (job.profile, accuracy targets), so it reads profiles too.
    "dlora_sim.scenario": {"dlora_sim.cost", "dlora_sim.kr", "dlora_sim.profile", "dlora_sim.traces"},
    "dlora_sim.traces": {"dlora_sim.cost"},
    "dlora_sim.sim": {"dlora_sim.cost", "dlora_sim.kr", "dlora_sim.scenario", "dlora_sim.profile", "dlora_sim.traces"},
    # the privacy attacks run the real model that profiling loads (and train it, with a KR config)
    "dlora_sim.privacy": {"dlora_sim.profiling", "dlora_sim.cost", "dlora_sim.profile", "dlora_sim.kr"},
}
TRAINING_STACK = ("torch", "transformers", "peft")
TORCH_AREAS = ("dlora_sim.profiling", "dlora_sim.privacy", "dlora_sim.live")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from dlora_sim import cost`` imports dlora_sim.cost; keep the package itself out
            names += [f"{node.module}.{alias.name}" for alias in node.names]
            names += [node.module] if node.module != "dlora_sim" else []
    return names


def _within(name: str, area: str) -> bool:
    return name == area or name.startswith(area + ".")


MODULES = {_module_name(path): _imports(path) for path in sorted(PACKAGE.rglob("*.py"))}


@pytest.mark.parametrize("area", sorted(ALLOWED))
def test_area_imports_only_what_it_may(area):
    """kr and profile import no other project module; cost only kr; report, scenario and sim their allowed areas."""
    allowed = {area} | SHARED | ALLOWED[area]
    wrong = [f"{module} imports {name}" for module, names in MODULES.items() if _within(module, area)
             for name in names if name.startswith("dlora_sim.")
             and not any(_within(name, ok) for ok in allowed)]
    assert wrong == []


def test_nothing_imports_cli():
    """Only the cli package itself imports dlora_sim.cli."""
    wrong = [f"{module} imports {name}" for module, names in MODULES.items()
             if not _within(module, "dlora_sim.cli") for name in names if _within(name, "dlora_sim.cli")]
    assert wrong == []


def test_only_profiling_imports_the_training_stack():
    """torch, transformers and peft are imported only by the packages that run the real model."""
    wrong = [f"{module} imports {name}" for module, names in MODULES.items()
             if not any(_within(module, area) for area in TORCH_AREAS) for name in names
             if name.split(".")[0] in TRAINING_STACK]
    assert wrong == []


# the strategies sit between the shapes and the pricing inside the cost package
STRATEGY_MAY_IMPORT = ("dlora_sim.cost.job", "dlora_sim.cost.models", "dlora_sim.cost.peft",
                       "dlora_sim.cost.hardware", "dlora_sim.cost.strategies", "dlora_sim.kr", *SHARED)


def test_strategies_read_shapes_never_prices():
    """A strategy states exchanges from shapes; it never imports totals, the grid model or memory."""
    wrong = [f"{module} imports {name}" for module, names in MODULES.items()
             if _within(module, "dlora_sim.cost.strategies") for name in names if name.startswith("dlora_sim.")
             and not any(_within(name, ok) for ok in STRATEGY_MAY_IMPORT)]
    assert wrong == []
