"""Assemble figures into ONE self-contained HTML page that works offline.

plotly.js is embedded once, inline, at the top; every figure is a div plus a small script. The
file can be mailed, opened from a USB stick or archived next to the results: no network needed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from dlora_sim.errors import InputError
from dlora_sim.io import atomic_write_text


@dataclass(frozen=True)
class Section:
    """One figure on the page with a heading and a sentence saying how to read it."""

    heading: str
    explanation: str
    figure: go.Figure


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, Roboto, sans-serif; margin: 0 auto;
       max-width: 1200px; padding: 1rem 2rem; color: #222; }
h1 { margin-bottom: 0.2rem; } .meta { color: #555; margin-top: 0; }
section { border-top: 1px solid #ddd; padding-top: 0.6rem; margin-top: 1.2rem; }
p.explain { color: #444; max-width: 60rem; } nav a { margin-right: 1rem; }
table.facts { border-collapse: collapse; } table.facts td { padding: 2px 10px; border-bottom: 1px solid #eee; }
"""


def figure_div(fig: go.Figure, div_id: str) -> str:
    """HTML for one figure without plotly.js (the page embeds it once)."""
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id,
                       config={"displaylogo": False, "responsive": True})


def render_page(title: str, subtitle: str, sections: Sequence[Section],
                facts: Sequence[tuple[str, str]] = ()) -> str:
    """The whole page as a string.

    Args:
        title: page heading.
        subtitle: one line under the heading (what the results are, where they came from).
        sections: figures in display order.
        facts: ``(name, value)`` pairs shown in a small table under the heading.
    """
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\">", "<head>", "<meta charset=\"utf-8\">",
        f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style>",
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script>", "</head>", "<body>",
        f"<h1>{html.escape(title)}</h1>", f"<p class=\"meta\">{html.escape(subtitle)}</p>",
    ]
    if facts:
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in facts)
        parts.append(f"<table class=\"facts\">{rows}</table>")
    parts.append("<nav>" + "".join(f"<a href=\"#s{i}\">{html.escape(s.heading)}</a>"
                                   for i, s in enumerate(sections)) + "</nav>")
    for i, section in enumerate(sections):
        parts += [f"<section id=\"s{i}\">", f"<h2>{html.escape(section.heading)}</h2>",
                  f"<p class=\"explain\">{html.escape(section.explanation)}</p>",
                  figure_div(section.figure, f"fig{i}"), "</section>"]
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def write_page(path: str | Path, title: str, subtitle: str, sections: Sequence[Section],
               facts: Sequence[tuple[str, str]] = ()) -> Path:
    """Render and write the page atomically; returns the path written.

    Raises:
        InputError: ``path`` is a folder, or it (or its folder) cannot be written.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; give the HTML file to write, e.g. {path / 'dashboard.html'}")
    page = render_page(title, subtitle, sections, facts)
    try:
        atomic_write_text(path, page)
    except OSError as error:
        raise InputError(f"{path}: cannot write the dashboard ({error.strerror or error})") from None
    return path
