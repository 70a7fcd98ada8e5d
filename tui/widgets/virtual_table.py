"""A table that draws only the rows on screen (Line API), for 100 000 resets.

Textual's DataTable builds a Row and measures every cell on ``add_rows`` (about a minute for
100k rows here); this widget keeps the rows as plain tuples and the current view as a list of
row indexes, so filtering and sorting are list operations and drawing costs the screen height.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ..bindings import bindings


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int
    fmt: Callable[[Any], str] = lambda v: "" if v is None else str(v)
    align_right: bool = False


def _sort_key(value: Any):
    # None last; numbers before strings so a mixed column still sorts
    if value is None:
        return (2, 0)
    if isinstance(value, (int, float)):
        return (0, value)
    return (1, str(value))


class VirtualTable(ScrollView, can_focus=True):
    BINDINGS = bindings("table")
    COMPONENT_CLASSES = {"virtual-table--header", "virtual-table--cursor",
                         "virtual-table--sorted"}
    DEFAULT_CSS = """
    VirtualTable { background: $surface; }
    VirtualTable > .virtual-table--header { text-style: bold; background: $primary 30%; }
    VirtualTable > .virtual-table--cursor { background: $accent 60%; }
    VirtualTable > .virtual-table--sorted { text-style: bold underline; }
    """

    cursor = reactive(0, always_update=True)

    class RowHighlighted(Message):
        def __init__(self, table: "VirtualTable", key: Optional[str]):
            super().__init__()
            self.table, self.key = table, key

    class RowSelected(Message):
        def __init__(self, table: "VirtualTable", key: str):
            super().__init__()
            self.table, self.key = table, key

    def __init__(self, columns: list[Column], **kwargs):
        super().__init__(**kwargs)
        self.columns = columns
        self.keys: list[str] = []
        self.rows: list[tuple] = []
        self.view: list[int] = []
        self.sort_column: Optional[int] = None
        self.sort_reverse = False
        self._predicate: Optional[Callable[[tuple], bool]] = None
        self._filtered: Optional[list[int]] = None

    # ------------------------------------------------------------------ data
    def set_rows(self, keys: list[str], rows: list[tuple]) -> None:
        self.keys, self.rows = keys, rows
        self._position = None
        self.apply(refilter=True)

    def set_filter(self, predicate: Optional[Callable[[tuple], bool]]) -> None:
        self._predicate = predicate
        self.apply(refilter=True)

    def sort_by(self, column: Optional[int], reverse: bool = False) -> None:
        self.sort_column, self.sort_reverse = column, reverse
        self.apply()

    def apply(self, refilter: bool = False) -> None:
        """Recompute the view (filter, then stable sort), keeping the highlighted row.
        The filtered rows are kept, so a sort does not filter again."""
        current = self.current_key
        pred, rows = self._predicate, self.rows
        if refilter or getattr(self, "_filtered", None) is None:
            self._filtered = (list(range(len(rows))) if pred is None
                              else [i for i, r in enumerate(rows) if pred(r)])
        view = list(self._filtered)
        if self.sort_column is not None:
            col = self.sort_column
            view.sort(key=lambda i: _sort_key(rows[i][col]), reverse=self.sort_reverse)
        self.view = view
        self.virtual_size = Size(self._width(), len(view) + 1)
        where = 0
        if current is not None and view:
            keys = self.keys
            where = next((n for n, i in enumerate(view) if keys[i] == current), 0)
        self.cursor = where
        self.refresh()

    def _width(self) -> int:
        return sum(c.width + 1 for c in self.columns) - 1

    @property
    def current_key(self) -> Optional[str]:
        if not getattr(self, "view", None) or not 0 <= self.cursor < len(self.view):
            return None
        return self.keys[self.view[self.cursor]]

    def move_to_key(self, key: str) -> bool:
        for n, i in enumerate(self.view):
            if self.keys[i] == key:
                self.cursor = n
                return True
        return False

    # ------------------------------------------------------------------ cursor
    def validate_cursor(self, value: int) -> int:
        n = len(getattr(self, "view", []) or [])
        return max(0, min(value, n - 1)) if n else 0

    def watch_cursor(self, value: int) -> None:
        body = max(1, self.size.height - 1)
        top = round(self.scroll_offset.y)
        if value < top:
            self.scroll_to(y=value, animate=False)
        elif value >= top + body:
            self.scroll_to(y=value - body + 1, animate=False)
        self.refresh()
        self.post_message(self.RowHighlighted(self, self.current_key))

    def _page(self) -> int:
        return max(1, self.size.height - 2)

    def action_cursor_up(self) -> None:
        self.cursor -= 1

    def action_cursor_down(self) -> None:
        self.cursor += 1

    def action_page_up(self) -> None:
        self.cursor -= self._page()

    def action_page_down(self) -> None:
        self.cursor += self._page()

    def action_first_row(self) -> None:
        self.cursor = 0

    def action_last_row(self) -> None:
        self.cursor = len(self.view) - 1

    def action_select_row(self) -> None:
        key = self.current_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def on_click(self, event) -> None:
        if event.y == 0:
            x = event.x + round(self.scroll_offset.x)
            left = 0
            for n, col in enumerate(self.columns):
                if left <= x < left + col.width + 1:
                    reverse = not self.sort_reverse if self.sort_column == n else False
                    self.sort_by(n, reverse)
                    return
                left += col.width + 1
            return
        row = round(self.scroll_offset.y) + event.y - 1
        if 0 <= row < len(self.view):
            if row == self.cursor and event.chain >= 2:
                self.action_select_row()
            self.cursor = row

    # ------------------------------------------------------------------ drawing
    def _cells(self, values: list[str], style: Style, sorted_style: Optional[Style] = None
               ) -> list[Segment]:
        segments = []
        for n, (col, text) in enumerate(zip(self.columns, values)):
            text = text if len(text) <= col.width else text[:col.width - 1] + "…"
            text = text.rjust(col.width) if col.align_right else text.ljust(col.width)
            cell_style = sorted_style if (sorted_style and n == self.sort_column) else style
            segments.append(Segment(text, cell_style))
            segments.append(Segment(" ", style))
        return segments[:-1]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x = round(self.scroll_offset.x)
        total = self._width()
        base = self.rich_style
        if y == 0:
            header = base + self.get_component_rich_style("virtual-table--header")
            labels = []
            for n, col in enumerate(self.columns):
                mark = ("▼" if self.sort_reverse else "▲") if n == self.sort_column else ""
                labels.append(col.label + mark)
            segs = self._cells(labels, header,
                               header + self.get_component_rich_style("virtual-table--sorted"))
            return Strip(segs, total).crop_extend(scroll_x, scroll_x + width, header)
        row = round(self.scroll_offset.y) + y - 1
        if row >= len(self.view):
            return Strip.blank(width, base)
        values = self.rows[self.view[row]]
        style = base
        if row == self.cursor:
            style = base + self.get_component_rich_style("virtual-table--cursor")
        texts = [col.fmt(v) for col, v in zip(self.columns, values)]
        return Strip(self._cells(texts, style), total).crop_extend(scroll_x, scroll_x + width, style)
