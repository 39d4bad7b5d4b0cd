"""Reading CSV data, inferring column types and computing the column statistics of T3."""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

MAX_ROWS = 100_000
STRING, FLOAT, DATE = 1, 2, 3
TYPE_NAMES = {STRING: "string", FLOAT: "float", DATE: "date"}
MAX_CLASSIFY_VALUES = 30
RAW_PREVIEW_ROWS = 10

_DATE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")


class DataError(ValueError):
    """The data cannot be used; the message is meant for the user."""


def parse_number(cell: str) -> float | None:
    """The cell as a finite number, or ``None``."""
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_date(cell: str) -> float | None:
    """The cell as a day ordinal (fraction for the time of day), or ``None``."""
    match = _DATE.fullmatch(cell)
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) if part else 0 for part in match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    return moment.toordinal() + (hour * 3600 + minute * 60 + second) / 86400


def parse_cell(cell: str, kind: int) -> float | None:
    """A numeric or date cell as a number (``None`` when missing or unreadable)."""
    if not cell:
        return None
    return parse_number(cell) if kind == FLOAT else parse_date(cell)


@dataclass
class Table:
    """The first :data:`MAX_ROWS` data rows of a CSV file, every row as long as the header."""

    columns: list[str]
    rows: list[list[str]]
    _kinds: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def index(self, column: str) -> int:
        return self.columns.index(column)

    def cells(self, column: str) -> list[str]:
        position = self.index(column)
        return [row[position] for row in self.rows]

    def kind(self, column: str) -> int:
        """The inferred type of a column: :data:`FLOAT`, :data:`DATE` or :data:`STRING` (cached)."""
        if column not in self._kinds:
            self._kinds[column] = infer_kind(self.cells(column))
        return self._kinds[column]

    def numbers(self, column: str) -> list[float | None]:
        kind = self.kind(column)
        return [parse_cell(cell, kind) for cell in self.cells(column)]

    def select(self, positions: Iterable[int]) -> Table:
        """A table of the given rows (same columns, type cache shared as types do not change)."""
        return Table(self.columns, [self.rows[position] for position in positions], self._kinds)


def read_csv(source: Path | IO[bytes] | bytes) -> Table:
    """Read a UTF-8 CSV file (BOM optional) with a header row.

    :param source: a path, an open binary file, or the bytes themselves (an inference request's
        one row: decoding them at once is a third of the cost of a text wrapper).
    :raises DataError: when the file is empty or not UTF-8 text.
    """
    if isinstance(source, Path):
        with source.open("rb") as binary:
            return read_csv(binary)
    text: IO[str] | None = None
    try:
        if isinstance(source, bytes):
            text = io.StringIO(source.decode("utf-8-sig"), newline="")
        else:
            text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if not header or not any(name.strip() for name in header):
            raise DataError("the file has no header row")
        columns = [name.strip() for name in header]
        width = len(columns)
        rows: list[list[str]] = []
        for row in reader:
            if not any(row):
                continue
            cells = [cell.strip() for cell in row[:width]]
            cells.extend([""] * (width - len(cells)))
            rows.append(cells)
            if len(rows) >= MAX_ROWS:
                break
    except UnicodeDecodeError as exc:
        raise DataError("the file is not UTF-8 text") from exc
    except csv.Error as exc:
        raise DataError(f"the file is not valid CSV: {exc}") from exc
    finally:
        if isinstance(text, io.TextIOWrapper):
            text.detach()  # the caller's file stays open
    return Table(columns, rows)


def infer_kind(cells: Iterable[str]) -> int:
    """:data:`FLOAT` if every non-missing cell is a number, else :data:`DATE` if every one is a
    date, else :data:`STRING` (also for a column with no value at all)."""
    numeric = dated = True
    seen = False
    for cell in cells:
        if not cell:
            continue
        seen = True
        is_number = parse_number(cell) is not None
        numeric = numeric and is_number
        dated = dated and not is_number and parse_date(cell) is not None
        if not numeric and not dated:
            return STRING
    if not seen:
        return STRING
    return FLOAT if numeric else DATE


def pearson(xs: Sequence[float | None], ys: Sequence[float | None]) -> float | None:
    """Pearson correlation over the rows where both values are present (``None`` if undefined)."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x is not None and y is not None]
    if len(pairs) < 2:
        return None
    mean_x = math.fsum(x for x, _ in pairs) / len(pairs)
    mean_y = math.fsum(y for _, y in pairs) / len(pairs)
    covariance = math.fsum((x - mean_x) * (y - mean_y) for x, y in pairs)
    spread_x = math.fsum((x - mean_x) ** 2 for x, _ in pairs)
    spread_y = math.fsum((y - mean_y) ** 2 for _, y in pairs)
    if spread_x <= 0 or spread_y <= 0:
        return None
    return max(-1.0, min(1.0, covariance / math.sqrt(spread_x * spread_y)))


def _raw_line(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


def column_info(table: Table, target: str | None = None) -> dict[str, Any]:
    """The Train Data Set Info (T3) answer for a table.

    :param table: the training data.
    :param target: the target column once a training named it; ``cor_score`` stays ``null`` without
        a numeric target.
    """
    target_values = None
    if target in table.columns and table.kind(target) == FLOAT:
        target_values = table.numbers(target)
    columns = [
        _column_entry(table, position, name, None if name == target else target_values)
        for position, name in enumerate(table.columns)
    ]
    return {
        "raw_column_names": list(table.columns),
        "raw_training_data": [{"row_data": _raw_line(row)} for row in table.rows[:RAW_PREVIEW_ROWS]],
        "training_data_columns": columns,
        "useless_column_list": [entry["name"] for entry in columns if entry["unique_count"] <= 1],
        "trainingdata_row_count": len(table.rows),
    }


def _column_entry(table: Table, position: int, name: str, target_values: list[float | None] | None) -> dict[str, Any]:
    cells = [cell for cell in table.cells(name) if cell]
    kind = table.kind(name)
    counts = Counter(cells)
    entry: dict[str, Any] = {
        "column_id": position,
        "name": name,
        "initial_data_type": kind,
        "available_data_types": sorted({kind, STRING}),
        "unique_count": len(counts),
        "data_count": len(cells),
        "missing_count": len(table.rows) - len(cells),
        "cor_score": None,
        "classify_value": None,
        "numerical_value": None,
    }
    if kind == STRING and len(counts) <= MAX_CLASSIFY_VALUES:
        entry["classify_value"] = [{"name": value, "value": count} for value, count in counts.most_common()]
    if kind != STRING:
        values = table.numbers(name)
        if target_values is not None:
            entry["cor_score"] = pearson(values, target_values)
        present = [value for value in values if value is not None]
        if kind == FLOAT and present:
            entry["numerical_value"] = [
                {
                    "max_value": max(present),
                    "min_value": min(present),
                    "avg_value": math.fsum(present) / len(present),
                    "median_value": statistics.median(present),
                }
            ]
    return entry
