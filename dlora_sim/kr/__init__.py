"""Kill-and-Revive: the controller that decides rounds (:mod:`.controller`) and the schedule of a
whole job that the cost model, the simulator and the dashboards read (:mod:`.schedule`).

Pure logic, Python and numpy only: no other project module is imported here.
"""

from dlora_sim.kr.controller import (
    ARMS,
    CALIBRATIONS,
    NORMALISATIONS,
    PROBE_MODES,
    SCORES,
    KRConfig,
    KRController,
    KRDecision,
    KRRoundWork,
    kr_round_work,
    round_work_at,
)
from dlora_sim.kr.schedule import KRRound, KRSchedule, ScheduleCounts, job_schedule, profile_churn

__all__ = [
    "ARMS", "CALIBRATIONS", "NORMALISATIONS", "PROBE_MODES", "SCORES", "KRConfig", "KRController",
    "KRDecision", "KRRound", "KRRoundWork", "KRSchedule", "ScheduleCounts", "job_schedule", "kr_round_work",
    "profile_churn", "round_work_at",
]
