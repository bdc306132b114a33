"""One radio power model per link (issue 16): the simulator's fleet, the planner's estimate and
``dlora-sim cost`` read a link's watts through ``cost.radio_watts`` alone, so a catalogue link,
one of its overrides and an inline link draw the same power in all three."""

from __future__ import annotations

import pytest
from _sim_scenarios import small

from dlora_sim import cost
from dlora_sim.planner.estimate import _groups
from dlora_sim.scenario.pricing import cost_link
from dlora_sim.sim.fleet import build_fleet

INLINE = {"name": "office", "up_bps": 20e6, "down_bps": 50e6, "rtt_s": 0.02}


@pytest.mark.parametrize(("link", "expected"), [
    ("lte", (cost.LINKS["lte"].up_w_per_mbps, cost.LINKS["lte"].down_w_per_mbps, cost.LINKS["lte"].active_w)),
    ({"name": "wifi", "up_bps": 5e6, "down_bps": 5e6, "rtt_s": 0.1},
     (cost.LINKS["wifi"].up_w_per_mbps, cost.LINKS["wifi"].down_w_per_mbps, cost.LINKS["wifi"].active_w)),
    (INLINE, (0.0, 0.0, 0.0)),
], ids=["catalogue", "catalogue-name-overridden", "inline"])
def test_simulator_planner_and_cost_draw_the_same_radio_power(link, expected):
    """A catalogue name keeps its Huang 2012 model whatever bandwidth the scenario gives it; an
    inline link has none; the three consumers agree with ``cost.radio_watts`` and each other."""
    scenario = small({"fleet.groups.0.link": link})
    spec = scenario.fleet.groups[0].link
    assert cost.radio_watts(spec) == pytest.approx(expected)
    fleet = build_fleet(scenario)
    simulated = (fleet.radio_up_w_per_mbps[0], fleet.radio_down_w_per_mbps[0], fleet.radio_active_w[0])
    planned = _groups(scenario, 50.0)[0].radio
    priced = cost_link(spec)
    assert simulated == pytest.approx(expected)
    assert planned == pytest.approx(expected)
    assert tuple(getattr(priced, name) for name in cost.RADIO_FIELDS) == pytest.approx(expected)


def test_a_cost_link_states_its_own_radio():
    """A link object with a power model of its own (a user's ``cost.Link``) is taken as it is,
    not replaced by the catalogue entry it is named after."""
    own = cost.Link("lte", 1e6, 1e6, 0.1, up_w_per_mbps=1.0, down_w_per_mbps=2.0, active_w=3.0)
    assert cost.radio_watts(own) == (1.0, 2.0, 3.0)
