"""``dlora-sim plan``: which configuration of a scenario meets a deadline at least cost (issue 16).

``plan(scenario, "48h", ...)`` searches a grid of job and cloud settings with the vectorised cost
model and fleet-level estimates (:mod:`.estimate`), keeps the Pareto front, filters it by the
constraints and confirms the best candidates with the simulator (:mod:`.search`). Also
importable as ``dlora_sim.plan``. See docs/planning.md.
"""

from __future__ import annotations

from dlora_sim.planner.search import OBJECTIVES, Plan, pareto_mask, plan
from dlora_sim.planner.space import DEFAULT_VARY, VARY_FIELDS, parse_duration, parse_vary

__all__ = ["DEFAULT_VARY", "OBJECTIVES", "VARY_FIELDS", "Plan", "pareto_mask", "parse_duration", "parse_vary", "plan"]
