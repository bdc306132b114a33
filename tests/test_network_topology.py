"""The shared network: built-in access → region → cloud tree and GraphML topologies."""

from __future__ import annotations

import tomllib
from pathlib import Path

import networkx as nx
import pytest

from dlora_sim.errors import InputError
from dlora_sim.scenario import load_scenario, scenario_from_dict
from dlora_sim.sim.network import build_topology

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
DEFAULT = SCENARIOS / "paper-default.toml"
EXAMPLE_GRAPHML = SCENARIOS / "flaky-topology.graphml"


def _scenario(groups: list[dict], network: dict | None = None):
    raw = tomllib.loads(DEFAULT.read_text())
    base = raw["fleet"]["groups"][0]
    raw["fleet"]["groups"] = [{**base, **group} for group in groups]
    raw["fleet"]["groups"] = [{k: v for k, v in g.items() if v is not None} for g in raw["fleet"]["groups"]]
    if network is not None:
        raw["network"] = network
    return scenario_from_dict(raw, source="test.toml", base_dir=SCENARIOS)


def _graphml(tmp_path: Path, nodes: dict[str, str], edges: list[tuple[str, str, float, float]]) -> Path:
    graph = nx.Graph()
    for node, kind in nodes.items():
        graph.add_node(node, kind=kind)
    for u, v, capacity_bps, latency_s in edges:
        graph.add_edge(u, v, capacity_bps=capacity_bps, latency_s=latency_s)
    path = tmp_path / "t.graphml"
    nx.write_graphml(graph, path)
    return path


def test_builtin_path_is_access_then_region_then_cloud():
    """Built-in: a group's traffic crosses its access link, then its region's link to the cloud."""
    scenario = _scenario([{"name": "a", "region": "eu"}],
                         {"access_capacity_bps": 1e9, "region_capacity_bps": 5e9, "access_latency_s": 0.003,
                          "region_latency_s": 0.007})
    path = build_topology(scenario).path("a")
    assert [(link.source, link.target) for link in path] == [("access:a", "region:eu"), ("region:eu", "cloud")]
    assert [link.capacity_bps for link in path] == [1e9, 5e9]
    assert build_topology(scenario).added_rtt_s("a") == pytest.approx(2 * (0.003 + 0.007))


def test_groups_in_one_region_share_its_link_and_not_their_access():
    """Two groups of a region share the region link object; each has its own access link."""
    topology = build_topology(_scenario([{"name": "a", "region": "eu"}, {"name": "b", "region": "eu"}]))
    a, b = topology.path("a"), topology.path("b")
    assert a[1] is b[1]
    assert a[0].id != b[0].id
    assert set(topology.links) == {a[0].id, b[0].id, a[1].id}


def test_groups_naming_one_access_network_share_it():
    """``access`` lets two groups (say two phone classes on one cell) share an access link."""
    topology = build_topology(_scenario([{"name": "a", "access": "cell"}, {"name": "b", "access": "cell"}]))
    assert topology.path("a")[0] is topology.path("b")[0]


def test_one_access_network_cannot_sit_in_two_regions():
    """A shared access network belongs to one region; saying otherwise is an input error."""
    with pytest.raises(InputError, match=r"test\.toml: fleet\.groups\.1\.region: access network 'cell'"):
        _scenario([{"name": "a", "access": "cell", "region": "eu"}, {"name": "b", "access": "cell", "region": "us"}])


def test_example_graphml_paths_take_the_lowest_latency():
    """In the shipped example the train cells reach the cloud via the metro (31 ms) not directly (40 ms)."""
    scenario = load_scenario(SCENARIOS / "flaky-network.toml")
    topology = build_topology(scenario)
    commuters = [link.id for link in topology.path("commuters")]
    assert commuters == ["cell-train->far-pop", "far-pop->metro", "metro->cloud"]
    assert topology.added_rtt_s("commuters") == pytest.approx(2 * (0.010 + 0.015 + 0.006))
    assert topology.bottleneck_bps("commuters") == 100e6
    for group in scenario.fleet.groups:
        assert topology.path(group.name)[-1].target == "cloud"


def test_equal_latency_prefers_fewer_hops(tmp_path):
    """With zero latencies everywhere the direct link wins over a detour."""
    path = _graphml(tmp_path, {"a": "access", "r": "region", "c": "cloud"},
                    [("a", "r", 1e9, 0.0), ("r", "c", 1e9, 0.0), ("a", "c", 1e6, 0.0)])
    topology = build_topology(_scenario([{"name": "g", "access": "a", "region": None}], {"graphml": str(path)}))
    assert [link.id for link in topology.path("g")] == ["a->c"]


@pytest.mark.parametrize(
    ("nodes", "edges", "words"),
    [
        ({"a": "access", "c": "region"}, [("a", "c", 1e9, 0.0)], "exactly one node with kind='cloud'"),
        ({"a": "access", "c": "cloud"}, [("a", "c", -1.0, 0.0)], "capacity_bps must be in [1, 1e+15]"),
        ({"a": "access", "c": "cloud"}, [("a", "c", 1e9, -0.1)], "latency_s must be in [0, 1e+15]"),
        ({"a": "access", "b": "access", "c": "cloud"}, [("b", "c", 1e9, 0.0)], "no path to the cloud"),
    ],
)
def test_bad_graphml_is_an_input_error(tmp_path, nodes, edges, words):
    """Topology problems name the scenario file, the field, and what is wrong."""
    path = _graphml(tmp_path, nodes, edges)
    with pytest.raises(InputError, match=r"^test\.toml: (network\.graphml|fleet\.groups\.0\.access): ") as caught:
        _scenario([{"name": "g", "access": "a"}], {"graphml": str(path)})
    assert words in str(caught.value)


def test_corrupt_graphml_is_an_input_error(tmp_path):
    """A file that is not GraphML is refused under network.graphml."""
    path = tmp_path / "x.graphml"
    path.write_text("<graphml><node")
    with pytest.raises(InputError, match=r"network\.graphml: .*not readable GraphML"):
        _scenario([{"name": "g"}], {"graphml": str(path)})


def test_records_describe_groups_and_shared_links():
    """to_records gives the dashboard nodes (with kinds) and edges (shared or private)."""
    scenario = load_scenario(DEFAULT)
    nodes, edges = build_topology(scenario).to_records(scenario)
    kinds = {node["kind"] for node in nodes}
    assert kinds == {"group", "access", "region", "cloud"}
    private = [edge for edge in edges if not edge["shared"]]
    assert len(private) == len(scenario.fleet.groups)
    assert all(edge["up_bps"] > 0 for edge in private)
    assert all(edge["capacity_bps"] > 0 for edge in edges if edge["shared"])
