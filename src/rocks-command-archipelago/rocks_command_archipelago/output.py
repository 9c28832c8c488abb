"""Output as Rocks prints it: an aligned table with an upper-case header, or JSON
(a list of objects keyed by column) with output-format=json."""
import json
import time

from archipelago.units import format_size


class Output:
    def __init__(self, header, rows=(), message=None, footer=None):
        self.header = list(header)
        self.rows = [list(r) for r in rows]
        self.message = message
        self.footer = footer      # a line after the table (not in JSON)

    def as_json(self):
        return json.dumps([dict(zip(self.header, r, strict=True)) for r in self.rows],
                          indent=1, default=str)

    def as_table(self):
        table = self._table()
        return f"{table}\n{self.footer}" if self.footer else table

    def _table(self):
        if not self.rows:
            return self.message or ""
        cells = [[h.upper() for h in self.header]] + [[_cell(c) for c in r] for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.header))]
        return "\n".join(" ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                         .rstrip() for row in cells)


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class Size(int):
    """Bytes: a number in JSON, 10G in a table."""

    def __str__(self):
        return format_size(int(self))     # int: below 1K format_size gives str(n)


class Age(float):
    """A UNIX time: a number in JSON, "42s"/"3m"/"5h" ago in a table."""

    def __str__(self):
        s = int(time.time() - self)
        return f"{s}s" if s < 120 else f"{s // 60}m" if s < 7200 else f"{s // 3600}h"


def size(n):
    return None if n is None else Size(n)


def age(ts):
    return None if not ts else Age(ts)
