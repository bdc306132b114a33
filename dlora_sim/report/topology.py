"""The network the fleet trains over: device groups, access networks, regions, the cloud.

Drawn left to right like a road map from the users' homes to the data centre, so a planner can
see which links are shared (and may contend) before reading any number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import networkx as nx
import plotly.graph_objects as go

from dlora_sim.report.style import empty_figure, finish, plain

# node kind -> (column from left, colour, readable name)
KIND_STYLE: dict[str, tuple[int, str, str]] = {
    "group": (0, "#2ca02c", "device group"),
    "device": (0, "#2ca02c", "device"),
    "access": (1, "#1f77b4", "access network"),
    "region": (2, "#ff7f0e", "region"),
    "core": (2, "#ff7f0e", "core network"),
    "cloud": (3, "#d62728", "cloud"),
}


def _fmt_bps(bps: object) -> str:
    if bps is None:
        return "n/a"
    value = float(bps)  # type: ignore[arg-type]
    for unit in ("bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"):
        if value < 1000 or unit == "Tbit/s":
            return f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} Tbit/s"


def edge_hover(attrs: Mapping[str, object]) -> str:
    """Readable description of a link's attributes (bandwidth in bit/s, RTT in s)."""
    parts = []
    for key, label in (("up_bps", "up"), ("down_bps", "down"), ("capacity_bps", "capacity")):
        if attrs.get(key) is not None:
            parts.append(f"{label}: {_fmt_bps(attrs[key])}")
    if attrs.get("rtt_s") is not None:
        parts.append(f"round-trip latency: {1000 * float(attrs['rtt_s']):,.1f} ms")  # type: ignore[arg-type]
    if attrs.get("latency_s") is not None:
        parts.append(f"one-way latency: {1000 * float(attrs['latency_s']):,.1f} ms")  # type: ignore[arg-type]
    if attrs.get("shared") is not None:
        parts.append("shared by the flows crossing it" if attrs["shared"] else "not shared")
    return "<br>".join(parts) or "link"


def layout_positions(graph: nx.Graph) -> dict[object, tuple[float, float]]:
    """Deterministic positions: columns by node kind when every node has a known kind.

    Each column lists its nodes in the graph's own order: given an attribute name instead,
    networkx groups the nodes into sets, whose order changes with ``PYTHONHASHSEED``.
    """
    kinds = nx.get_node_attributes(graph, "kind")
    if graph.number_of_nodes() and all(kinds.get(n) in KIND_STYLE for n in graph.nodes):
        columns: dict[int, list[object]] = {}
        for n in graph.nodes:
            columns.setdefault(KIND_STYLE[kinds[n]][0], []).append(n)
        pos = nx.multipartite_layout(graph, subset_key=dict(sorted(columns.items())))
    else:
        pos = nx.spring_layout(graph, seed=0)
    return {n: (float(x), float(y)) for n, (x, y) in pos.items()}


def topology_figure(
    nodes: Sequence[Mapping[str, object]],
    edges: Sequence[Mapping[str, object]],
    title: str = "Network topology: devices → access networks → regions → cloud",
) -> go.Figure:
    """Draw the topology with hover text on nodes and on link midpoints.

    Args:
        nodes: rows with ``id``, optional ``kind`` (group, access, region, cloud), ``label`` and
            ``detail`` (free text shown on hover).
        edges: rows with ``source``, ``target`` and optional ``up_bps``, ``down_bps``,
            ``capacity_bps``, ``rtt_s``, ``shared``.
        title: figure title.
    """
    if not nodes:
        return empty_figure(title, "These results carry no network topology.")
    graph = nx.Graph()
    for node in nodes:
        graph.add_node(node["id"], **{k: v for k, v in node.items() if k != "id"})
    for edge in edges:
        graph.add_edge(edge["source"], edge["target"],
                       **{k: v for k, v in edge.items() if k not in ("source", "target")})
    pos = layout_positions(graph)
    fig = go.Figure()
    line_x: list[float | None] = []
    line_y: list[float | None] = []
    mid_x, mid_y, mid_text = [], [], []
    for u, v, attrs in graph.edges(data=True):
        (x0, y0), (x1, y1) = pos[u], pos[v]
        line_x += [x0, x1, None]
        line_y += [y0, y1, None]
        mid_x.append((x0 + x1) / 2)
        mid_y.append((y0 + y1) / 2)
        mid_text.append(f"link {plain(graph.nodes[u].get('label', u))} ↔ {plain(graph.nodes[v].get('label', v))}"
                        f"<br>{edge_hover(attrs)}")
    fig.add_trace(go.Scatter(x=line_x, y=line_y, mode="lines", line={"color": "#999", "width": 2},
                             hoverinfo="skip", showlegend=False))
    fig.add_trace(go.Scatter(x=mid_x, y=mid_y, mode="markers", marker={"size": 8, "color": "#999",
                             "symbol": "diamond"}, name="link (hover for bandwidth, latency)",
                             hovertext=mid_text, hoverinfo="text"))
    by_kind: dict[str, list[object]] = {}
    for n, attrs in graph.nodes(data=True):
        by_kind.setdefault(str(attrs.get("kind", "node")), []).append(n)
    for kind, members in by_kind.items():
        _, colour, readable = KIND_STYLE.get(kind, (0, "#17becf", kind))
        fig.add_trace(go.Scatter(
            x=[pos[n][0] for n in members], y=[pos[n][1] for n in members], mode="markers+text",
            text=[plain(graph.nodes[n].get("label", n)) for n in members], textposition="top center",
            marker={"size": 18, "color": colour, "line": {"width": 1, "color": "black"}},
            name=plain(readable),
            hovertext=[f"{plain(readable)}: {plain(graph.nodes[n].get('label', n))}<br>"
                       f"{plain(graph.nodes[n].get('detail', ''))}" for n in members],
            hoverinfo="text",
        ))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return finish(fig, title, height_px=max(380, 60 * max(len(v) for v in by_kind.values()) + 200))
