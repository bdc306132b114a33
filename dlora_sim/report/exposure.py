"""What the cloud sees under each strategy: one row a strategy, one column a kind of exposure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

from dlora_sim.report.style import empty_figure, finish, plain, strategy_text


def exposure_figure(strategies: Mapping[str, Mapping[str, Any]], exposures: Sequence[str] | None) -> go.Figure:
    """A table of ``summary.json``'s ``cloud_sees`` per strategy (results written before it existed
    get an explanation instead)."""
    title = "What the cloud sees, per strategy"
    rows = {name: block.get("cloud_sees") for name, block in strategies.items()}
    if not exposures or any(seen is None for seen in rows.values()):
        return empty_figure(title, "These results do not record what the cloud sees; rerun with this version.")
    header = ["strategy", *exposures]
    cells = [[strategy_text(name) for name in rows]]
    for kind in exposures:
        cells.append(["yes" if kind in seen else "–" for seen in rows.values()])
    fig = go.Figure(go.Table(header={"values": [plain(h) for h in header], "align": "left"},
                             cells={"values": cells, "align": "left"}))
    return finish(fig, title, height_px=120 + 32 * len(rows))
