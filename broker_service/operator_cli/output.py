"""Where a command's result goes: a rich table or key/value panel on a terminal, or JSON with
``--json``. Commands hand over both forms and this module picks one, so that no command prints
half of each.

Output that is not a terminal (a pipe, a file, a test) is never folded to 80 columns: tables
are as wide as their content (up to 250 columns, whatever ``COLUMNS`` says), so ids and types
stay whole for grep and cut.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from leasq_broker.operator_cli.formatting import dumps

_PIPE_WIDTH = 250


def make_console(*, stderr: bool = False) -> Console:
    """A console for stdout (or stderr): colours and the terminal's width on a terminal,
    plain and wide otherwise."""
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(file=stream, highlight=False)
    return Console(file=stream, width=_PIPE_WIDTH, highlight=False, color_system=None,
                   soft_wrap=False)


class Output:
    """The result printer of one command invocation."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self.console = make_console()

    def json(self, value: Any) -> None:
        """Print ``value`` as JSON (see :func:`formatting.jsonable`)."""
        self.console.file.write(dumps(value) + "\n")
        self.console.file.flush()

    def show(self, value: Any, renderable: RenderableType | str) -> None:
        """``value`` as JSON with ``--json``, else ``renderable``."""
        if self.as_json:
            self.json(value)
        else:
            self.print(Text(renderable) if isinstance(renderable, str) else renderable)

    def print(self, renderable: RenderableType) -> None:
        """Render to the console; off a terminal without the padding rich adds to the right
        of every table line (so piped output compares and greps cleanly)."""
        if self.console.is_terminal:
            self.console.print(renderable)
            return
        with self.console.capture() as captured:
            self.console.print(renderable)
        lines = captured.get().splitlines()
        self.console.file.write("".join(line.rstrip() + "\n" for line in lines))
        self.console.file.flush()

    def message(self, value: Any, text: str) -> None:
        """A one-line outcome (``paused queue "email"``), or ``value`` as JSON."""
        self.show(value, text)


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          *, right: Iterable[str] = (), wrap: Iterable[str] = ()) -> Table:
    """A table with a header row; the columns named in ``right`` (counts) align right. On a
    narrow terminal only the columns named in ``wrap`` (free text) fold; the others are cut
    with an ellipsis, so that a number or a state never breaks over two lines."""
    aligned, folding = set(right), set(wrap)
    result = Table(title=title, title_justify="left", show_edge=False, pad_edge=False,
                   box=None, header_style="bold", collapse_padding=True)
    for name in columns:
        result.add_column(name, justify="right" if name in aligned else "left",
                          no_wrap=name not in folding,
                          overflow="fold" if name in folding else "ellipsis")
    for row in rows:
        result.add_row(*(Text(str(cell)) for cell in row))
    return result


def fields(title: str | None, pairs: Iterable[tuple[str, Any]]) -> Table:
    """A two-column ``name: value`` listing for one object."""
    result = Table(title=title, title_justify="left", show_header=False, show_edge=False,
                   pad_edge=False, box=None)
    result.add_column(style="bold")
    result.add_column(overflow="fold")
    for name, value in pairs:
        result.add_row(name, Text(str(value)))
    return result
