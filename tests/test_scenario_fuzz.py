"""Whatever a user writes into a field, the result is a scenario or one InputError line."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dlora_sim.errors import InputError
from dlora_sim.scenario import load_scenario

DEFAULT = Path(__file__).resolve().parents[1] / "scenarios" / "paper-default.toml"

FIELDS = [
    "job.rank", "job.batch", "job.seq_len", "job.steps", "job.budget", "job.kr_interval_steps",
    "job.targets", "job.peft", "job.dtype_bytes", "job.exchange", "job.target_accuracy",
    "fleet.groups.0.count", "fleet.groups.0.device", "fleet.groups.0.link", "fleet.groups.0.compute_spread",
    "fleet.groups.1.availability", "fleet.groups.1.link.up_bps", "network.access_capacity_bps",
    "network.graphml", "cloud.count", "cloud.gpu", "cloud.usd_per_hour", "scheduler.admission_limit",
    "run.seed", "run.horizon_s", "run.strategies", "run.granularity", "run", "job", "fleet.groups",
]

VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
              st.text(max_size=12), st.sampled_from(["lora", "phone-mid", "lte", "markov", "a100", "dlora-kr"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["kind", "up_bps", "down_bps", "rtt_s", "mean_online_s", "mean_offline_s", "x"]),
        inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), value=VALUES)
def test_any_value_gives_a_scenario_or_one_line_naming_the_field(field, value):
    """No traceback-worthy exception escapes validation, and errors name the file and a field."""
    try:
        scenario = load_scenario(DEFAULT, {field: value})
    except InputError as error:
        message = str(error)
        assert "\n" not in message
        assert message.startswith(f"{DEFAULT}: ")
        assert message.split(": ")[1].split(".")[0] in {"job", "fleet", "network", "cloud", "scheduler", "run"}
    else:
        json.dumps(scenario.to_resolved_dict(), allow_nan=False)  # results can always record it
