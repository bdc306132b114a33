"""The roads between the users and the data centre: access networks, regions, the cloud.

Picture a city's phones: each has its own last-mile radio (the group's ``link``: private, not
shared), all phones on one cell share its backhaul (the *access* link), all cells of a region
share the regional uplink (the *region* link), and every region reaches the cloud. Only the
access and region links are shared, so only they appear here: a :class:`Topology` is a networkx
graph plus, for every fleet group, the ordered tuple of shared links its traffic crosses.

Two sources, one shape:
- built-in: node ``access:<access>`` per access network (a group's ``access``, default its
  name) → ``region:<region>`` → ``cloud``, with the ``[network]`` tier capacities/latencies;
- GraphML: any graph with exactly one node of ``kind="cloud"`` and, on every edge,
  ``capacity_bps`` (> 0, each direction) and ``latency_s`` (>= 0, one way); a group attaches
  at the node named by its ``access`` (default: the group name). Direction is ignored.

Paths take the lowest total latency, then the fewest hops (deterministic for a given file).
How flows share a link's capacity is :mod:`dlora_sim.sim.links`' business.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from dlora_sim.scenario import Scenario

__all__ = ["SharedLink", "Topology", "build_topology"]

CLOUD = "cloud"
_HOP_S = 1e-12  # tie-break: among equal latencies prefer fewer hops


@dataclass(frozen=True)
class SharedLink:
    """One shared link, oriented toward the cloud: ``source`` is the device side.

    ``capacity_bps`` holds in each direction (full duplex), ``latency_s`` is one way.
    """

    id: str
    source: str
    target: str
    capacity_bps: float
    latency_s: float


@dataclass(frozen=True)
class Topology:
    """The shared network and each fleet group's path through it to the cloud."""

    graph: nx.Graph
    cloud: str
    group_access: Mapping[str, str]
    group_paths: Mapping[str, tuple[SharedLink, ...]]
    links: Mapping[str, SharedLink] = field(default_factory=dict)

    def path(self, group: str) -> tuple[SharedLink, ...]:
        """Shared links, device side first, that the group's traffic crosses to the cloud."""
        try:
            return self.group_paths[group]
        except KeyError:
            raise ValueError(f"unknown fleet group {group!r}; known: {', '.join(self.group_paths)}") from None

    def added_rtt_s(self, group: str) -> float:
        """Round-trip latency the shared path adds to the device's own link RTT."""
        return 2.0 * sum(link.latency_s for link in self.path(group))

    def bottleneck_bps(self, group: str) -> float:
        """Smallest shared capacity on the group's path (inf when the path is empty)."""
        return min((link.capacity_bps for link in self.path(group)), default=float("inf"))

    def to_records(self, scenario: Scenario | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Nodes and edges as plain rows (for results files and the topology figure).

        With ``scenario``, each fleet group is added as a node joined to its access network
        by its own (private) link.
        """
        nodes: list[dict[str, Any]] = [
            {"id": str(node), "kind": str(data.get("kind", "node")), "label": str(data.get("label", node))}
            for node, data in self.graph.nodes(data=True)
        ]
        edges: list[dict[str, Any]] = [
            {"source": link.source, "target": link.target, "capacity_bps": link.capacity_bps,
             "latency_s": link.latency_s, "shared": True}
            for link in self.links.values()
        ]
        if scenario is not None:
            for group in scenario.fleet.groups:
                node_id = f"group:{group.name}"
                nodes.append({"id": node_id, "kind": "group", "label": group.name,
                              "detail": f"{group.count} × {group.device.name} on {group.link.name}"})
                edges.append({"source": node_id, "target": self.group_access[group.name],
                              "up_bps": group.link.up_bps, "down_bps": group.link.down_bps,
                              "rtt_s": group.link.rtt_s, "shared": False})
        return nodes, edges


def build_topology(scenario: Scenario) -> Topology:
    """The scenario's shared network with every group's path to the cloud.

    Raises:
        ValueError: if a group's access node cannot reach the cloud (a validated scenario
            never does this; the check keeps hand-built scenarios honest).
    """
    if scenario.network.graphml is None:
        graph = _builtin_graph(scenario)
        group_access = {g.name: f"access:{g.access_node}" for g in scenario.fleet.groups}
    else:
        graph = scenario.network.load_graph()
        group_access = {g.name: g.access_node for g in scenario.fleet.groups}
    cloud = next(node for node, kind in graph.nodes(data="kind") if kind == CLOUD)
    links: dict[str, SharedLink] = {}
    group_paths: dict[str, tuple[SharedLink, ...]] = {}
    for group, access in group_access.items():
        if access not in graph or not nx.has_path(graph, access, cloud):
            raise ValueError(f"fleet group {group!r}: access node {access!r} does not reach {cloud!r}")
        nodes = nx.shortest_path(graph, access, cloud, weight=lambda u, v, d: d["latency_s"] + _HOP_S)
        path = []
        for u, v in zip(nodes, nodes[1:]):
            data = graph.edges[u, v]
            link = links.setdefault(
                f"{u}->{v}",
                SharedLink(f"{u}->{v}", str(u), str(v), float(data["capacity_bps"]), float(data["latency_s"])),
            )
            path.append(link)
        group_paths[group] = tuple(path)
    return Topology(graph, cloud, group_access, group_paths, dict(sorted(links.items())))


def _builtin_graph(scenario: Scenario) -> nx.Graph:
    net = scenario.network
    graph = nx.Graph()
    graph.add_node(CLOUD, kind="cloud", label="cloud")
    for group in scenario.fleet.groups:
        access, region = f"access:{group.access_node}", f"region:{group.region}"
        graph.add_node(region, kind="region", label=group.region)
        graph.add_node(access, kind="access", label=group.access_node)
        graph.add_edge(region, CLOUD, capacity_bps=net.region_capacity_bps, latency_s=net.region_latency_s)
        graph.add_edge(access, region, capacity_bps=net.access_capacity_bps, latency_s=net.access_latency_s)
    return graph

