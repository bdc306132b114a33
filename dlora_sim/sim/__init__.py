"""The SimPy fleet simulator: ``simulate(scenario) -> SimulationResult`` and the results folder.

See docs/simulator.md for the model (entities, protocol mapping to the cost model, batching,
fair sharing, faults, KR schedule scaling, determinism) and its limits.
"""

from __future__ import annotations

from dlora_sim.sim.engine import simulate
from dlora_sim.sim.results import SimulationResult, read_results, write_results

__all__ = ["simulate", "SimulationResult", "read_results", "write_results"]
