"""Tables that stay readable in a narrow terminal (issue 16: ``cost`` needed ~240 columns).

rich squeezes a table that is wider than the console: it wraps values across lines ("53.8" over
"GFLOP") and, where a word cannot wrap, cuts it to "…", so an 80-column terminal showed a
whole-job table of "2…" cells. :func:`print_table` prints a table as it is when every value fits
on one line of its column (headers may wrap at spaces), and otherwise one small block per row:
the row's first cell(s) as a heading, then one "header  value" line per column. Nothing is cut.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

_UNBOUNDED = 100_000  # measuring at this width gives a table's natural (unsqueezed) width


def _width(cell: object) -> int:
    """Printed width of a cell (markup removed), its widest line."""
    text = cell if isinstance(cell, Text) else Text.from_markup(str(cell))
    return max((cell_len(line) for line in text.plain.splitlines()), default=0)


def _header_word(header: object) -> int:
    """Width of the longest word of a header: the narrowest it can wrap to."""
    plain = header.plain if isinstance(header, Text) else Text.from_markup(str(header)).plain
    return max((cell_len(word) for word in plain.split()), default=0)


def _value_widths(table: Table) -> list[int]:
    """Per column, the width that keeps every value on one line and wraps the header at spaces."""
    return [max([_header_word(c.header) if table.show_header else 0, *map(_width, c.cells)]) for c in table.columns]


def fits(table: Table, width: int) -> bool:
    """True when every value fits unwrapped and every header word fits (box and padding included)."""
    left, right = table.padding[3], table.padding[1]
    edges = len(table.columns) + 1 if table.box is not None else 0
    return sum(_value_widths(table)) + len(table.columns) * (left + right) + edges <= width


def print_table(console: Console, table: Table, heading_columns: int = 1) -> None:
    """Print ``table`` whole when it fits ``console``, else stacked: one block per row, headed by
    its first ``heading_columns`` cells (what tells the rows apart, e.g. task · PEFT · arm · B).

    Between the two, when the values fit but the headers do not, each column gets the width of
    its widest value (rich would otherwise shrink every column alike and wrap values too).
    """
    if console.measure(table, options=console.options.update_width(_UNBOUNDED)).maximum <= console.width:
        console.print(table)
        return
    if fits(table, console.width):
        for column, width in zip(table.columns, _value_widths(table)):
            column.width = width
        console.print(table)
        return
    if table.title:
        console.print(table.title, style="bold", overflow="fold")
    columns = [list(c.cells) for c in table.columns]
    headers = [c.header if isinstance(c.header, Text) else Text.from_markup(str(c.header)) for c in table.columns]
    for row in range(table.row_count):
        heading = Text(" · ").join(cell if isinstance(cell, Text) else Text.from_markup(str(cell))
                                   for cell in (c[row] for c in columns[:heading_columns]))
        console.print(heading, style="bold", overflow="fold")
        block = Table(show_header=False, box=None, padding=(0, 1))
        block.add_column(style="dim", no_wrap=True)
        block.add_column(overflow="fold")
        for header, cells in zip(headers[heading_columns:], columns[heading_columns:]):
            block.add_row(Text(" ".join(header.plain.split())), cells[row])
        console.print(Padding(block, (0, 0, 0, 2), expand=False))
    if table.caption:
        console.print(table.caption, style="dim", overflow="fold")
