"""dlora-sim: plan cloud-edge fine-tuning of language models with DLoRA and Kill-and-Revive.

The public names are imported lazily so that ``import dlora_sim`` stays cheap and never pulls
in the training stack (torch, transformers, peft): the cost model and the simulator must work
on a machine that has only the core dependencies.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "CostModel": "dlora_sim.cost",
    "Scenario": "dlora_sim.scenario",
    "load_scenario": "dlora_sim.scenario",
    "simulate": "dlora_sim.sim",
    "load_profile": "dlora_sim.profile",
    "save_profile": "dlora_sim.profile",
    "plan": "dlora_sim.planner",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dlora_sim' has no attribute {name!r}")
