"""Small scenarios built in code for the simulator tests (MiniLM-L6 shapes: 24 modules, fast)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dlora_sim.scenario import scenario_from_dict

REPO = Path(__file__).resolve().parents[1]
# A KR profile (its recorded churn drives dlora-kr); any committed profile otherwise.
_PROFILES = sorted((REPO / "profiles").glob("*-lora-kr-*.json")) or sorted((REPO / "profiles").glob("*.json"))
PROFILE = _PROFILES[0] if _PROFILES else REPO / "profiles" / "missing.json"

BASE: dict[str, Any] = {
    "name": "small",
    "job": {
        "model": "minilm-l6", "peft": "lora", "rank": 8, "targets": ["q", "k", "v", "o"],
        "batch": 4, "seq_len": 64, "steps": 30, "budget": 3, "kr_interval_steps": 10,
        "profile": str(PROFILE),
    },
    "fleet": {"groups": [
        {"name": "phones", "count": 2, "device": "phone-mid", "link": "lte"},
    ]},
    "cloud": {"gpu": "a100", "count": 1, "batch_max_users": 4, "batch_window_s": 0.0},
    "scheduler": {"checkpoint_interval_steps": 5, "session_timeout_s": 60.0},
    "run": {"seed": 3, "horizon_s": 86400.0, "strategies": ["dlora-all", "dlora-kr"],
            "granularity": "step", "timeline_sample_devices": 2},
}


def small(overrides: dict[str, Any] | None = None, groups: list[dict[str, Any]] | None = None) -> Any:
    """The base scenario with dotted-path overrides and, optionally, other fleet groups."""
    raw = copy.deepcopy(BASE)
    if groups is not None:
        raw["fleet"]["groups"] = groups
    return scenario_from_dict(raw, overrides=overrides or {})
