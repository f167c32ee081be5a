"""Tidy tables read back from a run's CSV files, for drawing figures without recomputing.

An experiment writes ``results.csv`` (one row per theory-vs-simulation cell) and ``curves.csv``
(dense theory lines and reference levels); its ``draw`` function gets both as :class:`Table`
objects, whether it is called at the end of a run or later by ``strongcollapse plot RUN_DIR``.
Drawing *always* goes through the CSV round trip (see :mod:`.report`), so a redrawn figure is
the same figure.
"""

from __future__ import annotations

import csv
import pathlib
from typing import Any, Iterable, Mapping

import numpy as np

from strongcollapse.vocabulary.validation import ParameterError

__all__ = ["Table", "parse_cell"]


def parse_cell(text: str) -> Any:
    """A CSV cell as written by :func:`strongcollapse.orchestration.results.write_csv`:
    int, float (full-precision repr, also inf/nan), bool, or the string itself."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


class Table:
    """Rows of one CSV with column access: ``table.where(panel="isotropic")["n"]`` is an array."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.rows = [dict(row) for row in rows]

    @classmethod
    def read_csv(cls, path: str | pathlib.Path) -> "Table":
        """Reads a CSV written by ``write_csv`` (a missing file is an empty table)."""
        path = pathlib.Path(path)
        if not path.is_file():
            return cls([])
        with path.open(newline="", encoding="utf-8") as handle:
            return cls({k: parse_cell(v) for k, v in row.items()} for row in csv.DictReader(handle))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> np.ndarray:
        """The column as an array (float64 when numeric)."""
        if self.rows and column not in self.rows[0]:
            raise ParameterError(f"table has no column {column!r}; columns {sorted(self.rows[0])}")
        values = [row[column] for row in self.rows]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return np.asarray(values, dtype=np.float64)
        return np.asarray(values, dtype=object)

    def where(self, **equal: Any) -> "Table":
        """The rows whose columns equal the given values (floats compared exactly: they round-trip)."""
        return Table(row for row in self.rows if all(row.get(k) == v for k, v in equal.items()))

    def unique(self, column: str) -> list[Any]:
        """Distinct values of a column in order of first appearance."""
        seen: dict[Any, None] = {}
        for row in self.rows:
            seen.setdefault(row[column], None)
        return list(seen)
