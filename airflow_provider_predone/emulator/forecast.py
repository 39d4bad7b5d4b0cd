"""Time-series mode (``tsm``): the time and series columns, the forecast window, the forecaster.

The emulator checks a forecasting design as far as the data can tell (the time column parses
in the time unit, each series has one row per time on a regular grid, the window is shorter
than the history) and forecasts with a deliberately simple model: ridge regression on the
time (a trend), the series and the columns known in the forecast window. See "Time-series
mode" in docs/emulator.md.
"""

from __future__ import annotations

import calendar
import itertools
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from .learning import REGRESSION, Model, Prediction, Ridge, Row
from .tabular import STRING, DataError, Table

UNITS = ("year", "month", "day", "hour", "minute", "eom")
_PLURAL = {"year": "years", "month": "months", "day": "days", "hour": "hours", "minute": "minutes", "eom": "months"}
_WRITTEN = {
    "year": "YYYY or a date",
    "month": "YYYY-MM or a date",
    "eom": "the last day of a month, YYYY-MM-DD",
    "day": "a date, YYYY-MM-DD",
    "hour": "a date and time, YYYY-MM-DD HH:MM",
    "minute": "a date and time, YYYY-MM-DD HH:MM",
}
_YEAR = re.compile(r"(\d{4})")
_MONTH = re.compile(r"(\d{4})[-/](\d{1,2})")
_MOMENT = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?")
#: How precise a written time is, coarse to fine; a unit needs at least its own precision.
_PRECISION = {"year": 0, "month": 1, "day": 2, "time": 3}
_NEEDS = {"year": 0, "month": 1, "eom": 2, "day": 2, "hour": 2, "minute": 2}


@dataclass(frozen=True)
class TimeSeriesSpec:
    """The time-series keys of a training config.

    :param unit: ``tsu``; ``None`` lets the data decide.
    :param interval: ``tsi`` in units; ``0`` lets the data decide.
    :param start: ``tsf``, the first period of the forecast window (periods after the data's end).
    :param end: ``tst``, the last period of the forecast window.
    :param known: ``tsin``: the other columns are known in the forecast window.
    :param exceptions: ``tsine``: columns for which ``known`` does not hold.
    """

    time_column: str
    unit: str | None
    interval: int
    start: int
    end: int
    series_column: str | None
    known: bool
    exceptions: tuple[str, ...]

    def known_columns(self, columns: Sequence[str], target: str) -> list[str]:
        """The other columns a forecast can read: known in the window (``tsin``, except ``tsine``)."""
        special = (target, self.time_column, self.series_column)
        return [name for name in columns if name not in special and (name in self.exceptions) != self.known]


def _parse(cell: str) -> tuple[datetime, int] | None:
    """A written time and its precision (see :data:`_PRECISION`), or ``None``."""
    match = _MOMENT.fullmatch(cell)
    try:
        if match is not None:
            year, month, day, hour, minute, second = (int(part) if part else 0 for part in match.groups())
            precision = _PRECISION["time"] if match.group(4) else _PRECISION["day"]
            return datetime(year, month, day, hour, minute, second), precision
        match = _MONTH.fullmatch(cell)
        if match is not None:
            return datetime(int(match.group(1)), int(match.group(2)), 1), _PRECISION["month"]
        match = _YEAR.fullmatch(cell)
        if match is not None:
            return datetime(int(match.group(1)), 1, 1), _PRECISION["year"]
    except ValueError:  # month 13, February 30th
        return None
    return None


def period(cell: str, unit: str) -> int | None:
    """The cell as a whole number of ``unit`` (months since year 0, days since day 1, ...), or
    ``None`` when it is not a time of that unit (less precise, or not a month's end for ``eom``)."""
    parsed = _parse(cell)
    if parsed is None or parsed[1] < _NEEDS[unit]:
        return None
    moment = parsed[0]
    if unit == "year":
        return moment.year
    if unit in ("month", "eom"):
        if unit == "eom" and moment.day != calendar.monthrange(moment.year, moment.month)[1]:
            return None
        return moment.year * 12 + moment.month - 1
    days = moment.toordinal()
    if unit == "day":
        return days
    hours = days * 24 + moment.hour
    return hours if unit == "hour" else hours * 60 + moment.minute


def label(number: int, unit: str) -> str:
    """A period written back as a person reads it."""
    if unit == "year":
        return str(number)
    if unit in ("month", "eom"):
        return f"{number // 12:04d}-{number % 12 + 1:02d}"
    if unit == "day":
        return datetime.fromordinal(number).date().isoformat()
    minutes = number * 60 if unit == "hour" else number
    day = datetime.fromordinal(minutes // 1440)
    return f"{day.date().isoformat()} {minutes % 1440 // 60:02d}:{minutes % 60:02d}"


def guess_unit(cells: Sequence[str]) -> str | None:
    """The unit data look written in (``tsu`` absent): the coarsest precision, else the smallest
    step between distinct times. ``None`` when no cell is a time."""
    parsed = [p for p in (_parse(cell) for cell in cells if cell) if p is not None]
    if not parsed:
        return None
    coarsest = min(precision for _, precision in parsed)
    if coarsest == _PRECISION["year"]:
        return "year"
    if coarsest == _PRECISION["month"]:
        return "month"
    moments = sorted({moment for moment, _ in parsed})
    steps = [(b - a).total_seconds() / 60 for a, b in itertools.pairwise(moments)]
    smallest = min(steps, default=1440.0)
    if smallest < 60:
        return "minute"
    if smallest < 1440:
        return "hour"
    days = smallest / 1440
    if days >= 365 and all((m.month, m.day) == (moments[0].month, moments[0].day) for m in moments):
        return "year"
    if 28 <= days <= 31:
        ends = all(m.day == calendar.monthrange(m.year, m.month)[1] for m in moments)
        return "eom" if ends else "month"
    return "day"


@dataclass(frozen=True)
class History:
    """What the training data say about time: the unit, the grid and the span.

    :param periods: each data row's period (``None`` for a row without a usable target).
    """

    unit: str
    interval: int
    first: int
    last: int
    periods: list[int | None]
    series: list[str]

    @property
    def length(self) -> int:
        """How many intervals the history spans, first and last included."""
        return (self.last - self.first) // self.interval + 1

    def words(self, count: int) -> str:
        """``count`` intervals as a person says it (``3 months``, ``6 hours``)."""
        return f"{count * self.interval} {_PLURAL[self.unit]}"


def check_history(table: Table, spec: TimeSeriesSpec, target: str, usable: Sequence[int]) -> History:
    """Check the training data of a time-series training; the message names what to fix.

    :param usable: the rows with a usable target (the others are not part of the history).
    :raises DataError: on the first problem.
    """
    _check_columns(table, spec, "data")
    tsc, tss = spec.time_column, spec.series_column
    cells = table.cells(tsc)
    unit = spec.unit or guess_unit([cells[row] for row in usable])
    if unit is None:
        raise DataError(f"the time column '{tsc}' (tsc) holds no date or time; set tsu or fix the column")
    series_cells = table.cells(tss) if tss else [""] * len(cells)
    periods: list[int | None] = [None] * len(cells)
    by_series: dict[str, list[int]] = defaultdict(list)
    for row in usable:
        try:
            periods[row] = number = _row_period(cells[row], row, tsc, unit, spec.unit is None)
        except DataError as exc:
            guessed = guess_unit([cells[k] for k in usable])
            hint = f"; the data look like tsu={guessed}" if guessed and guessed != unit else ""
            raise DataError(f"{exc}{hint}") from None
        if tss and not series_cells[row]:
            raise DataError(f"the series column '{tss}' (tss) is empty in data row {row + 1}")
        by_series[series_cells[row]].append(number)
    for name, times in by_series.items():
        _check_unique(times, name, unit, spec)
    steps = sorted({b - a for times in by_series.values() for a, b in _pairs(sorted(times))})
    interval = spec.interval or (steps[0] if steps else 1)
    _check_grid(steps, interval, unit, spec, [cells[row] for row in usable])
    everything = [number for number in periods if number is not None]
    history = History(unit, interval, min(everything), max(everything), periods, series_cells)
    if spec.end >= history.length:
        raise DataError(
            f"the forecast window ends {history.words(spec.end)} after the data (tst={spec.end}) but the "
            f"history spans {history.words(history.length)} ({label(history.first, unit)} to "
            f"{label(history.last, unit)}): the window must be shorter than the history"
        )
    return history


def _check_columns(table: Table, spec: TimeSeriesSpec, what: str) -> None:
    if spec.time_column not in table.columns:
        raise DataError(f"the time column '{spec.time_column}' (tsc) is not in the {what}")
    if spec.series_column and spec.series_column not in table.columns:
        raise DataError(f"the series column '{spec.series_column}' (tss) is not in the {what}")
    if what == "data":
        for name in spec.exceptions:
            if name not in table.columns:
                raise DataError(f"tsine names '{name}', which is not in the data")


def _row_period(cell: str, row: int, tsc: str, unit: str, guessed: bool) -> int:
    number = period(cell, unit)
    if number is None:
        how = "as the data suggest (tsu absent)" if guessed else f"(tsu={unit})"
        shown = f"'{cell}'" if cell else "nothing"
        raise DataError(
            f"the time column '{tsc}' (tsc) holds {shown} in data row {row + 1}, which is not a "
            f"{'month end' if unit == 'eom' else unit} {how}: write {_WRITTEN[unit]}"
        )
    return number


def _pairs(values: Sequence[int]) -> list[tuple[int, int]]:
    return list(itertools.pairwise(values))


def _check_unique(times: list[int], series: str, unit: str, spec: TimeSeriesSpec) -> None:
    seen: dict[int, int] = defaultdict(int)
    for number in times:
        seen[number] += 1
    repeated = next((number for number, count in sorted(seen.items()) if count > 1), None)
    if repeated is None:
        return
    when = label(repeated, unit)
    if spec.series_column:
        raise DataError(
            f"series '{series}' of '{spec.series_column}' (tss) has {seen[repeated]} rows for {when} "
            f"(tsu={unit}): a series needs one row per time; is tsu too coarse for the data?"
        )
    raise DataError(
        f"the time {when} occurs in {seen[repeated]} rows of '{spec.time_column}' (tsc, tsu={unit}): "
        "one row per time is needed; if the rows belong to several series (stores, products), "
        "name that column in tss; else tsu may be too coarse"
    )


def _check_grid(steps: list[int], interval: int, unit: str, spec: TimeSeriesSpec, cells: list[str]) -> None:
    irregular = [step for step in steps if step % interval]
    if not irregular:
        return
    guessed = guess_unit(cells)
    hint = f"; the data look like tsu={guessed}" if guessed and guessed != unit else ""
    given = f", tsi={spec.interval}" if spec.interval else ""
    seen = f"{steps[0]}" if steps[0] == steps[-1] else f"{steps[0]} to {steps[-1]}"
    words = _PLURAL[unit] if seen != "1" else ("month" if unit == "eom" else unit)
    raise DataError(
        f"the time column '{spec.time_column}' (tsc) does not step regularly in {_PLURAL[unit]} "
        f"(tsu={unit}{given}): consecutive times are {seen} {words} apart, not multiples "
        f"of {interval}{hint}"
    )


class Forecaster(Model):
    """Ridge regression on the time (a trend in periods), the series (one-hot) and the columns
    known in the forecast window; a forecast is for a time up to ``tst`` intervals after the
    training data's end."""

    algorithm = "time_series_ridge_regression"

    def __init__(self, table: Table, targets: Sequence[float], spec: TimeSeriesSpec, history: History, target: str):
        self.spec = spec
        self.history = history
        self.known = spec.known_columns(table.columns, target)
        features = [spec.time_column, *([spec.series_column] if spec.series_column else []), *self.known]
        tsc = table.index(spec.time_column)
        others = [table.index(name) for name in features[1:]]
        rows = [[str(period(row[tsc], history.unit)), *(row[k] for k in others)] for row in table.rows]
        # The series is a label even when written as a number (store 1, 2, 3).
        kinds = {spec.series_column: STRING} if spec.series_column else {}
        self.series = set(table.cells(spec.series_column)) if spec.series_column else set()
        self.ridge = Ridge(Table(features, rows, dict(kinds)), features, targets)
        super().__init__(REGRESSION, features, self.ridge.kinds)

    def predict(self, row: Row) -> Prediction:
        number = period(row.get(self.spec.time_column, ""), self.history.unit)
        converted = dict(row)
        converted[self.spec.time_column] = "" if number is None else str(number)
        return self.ridge.predict(converted)

    def check_input(self, table: Table) -> None:
        """Refuse rows to score that lack what a forecast reads, or that ask beyond the window."""
        spec, history = self.spec, self.history
        roles = {spec.time_column: "tsc, the time column"}
        if spec.series_column:
            roles[spec.series_column] = "tss, the series column"
        roles.update({name: "known in the forecast window: tsin/tsine" for name in self.known})
        missing = [f"{name} ({role})" for name, role in roles.items() if name not in table.columns]
        if missing:
            raise ValueError(f"missing columns the forecast needs: {', '.join(missing)}")
        window_start = history.last + spec.start * history.interval
        window_end = history.last + spec.end * history.interval
        for number, row in enumerate(table.rows, start=1):
            cells = dict(zip(table.columns, row, strict=True))
            cell = cells[spec.time_column]
            moment = period(cell, history.unit)
            if moment is None:
                raise ValueError(
                    f"row {number}: the time column '{spec.time_column}' holds '{cell}', not a "
                    f"{history.unit} (write {_WRITTEN[history.unit]})"
                )
            if spec.series_column and cells[spec.series_column] not in self.series:
                raise ValueError(
                    f"row {number}: series '{cells[spec.series_column]}' of '{spec.series_column}' "
                    "has no history in the training data"
                )
            if history.last < moment and not window_start <= moment <= window_end:
                raise ValueError(
                    f"row {number}: {label(moment, history.unit)} is outside the forecast window "
                    f"{label(window_start, history.unit)} to {label(window_end, history.unit)} "
                    f"(tsf={spec.start}, tst={spec.end} after the training data's last time "
                    f"{label(history.last, history.unit)})"
                )

    def summary(self) -> dict[str, object]:
        """The time-series part of the result summary."""
        spec, history = self.spec, self.history
        return {
            "time_column": spec.time_column,
            "series_column": spec.series_column,
            "unit": history.unit,
            "interval": history.interval,
            "window": [spec.start, spec.end],
            "history": {"first": label(history.first, history.unit), "last": label(history.last, history.unit)},
            "series": sorted(self.series),
            "known_columns": self.known,
        }


def check_evaluation(table: Table, spec: TimeSeriesSpec, history: History, usable: Sequence[int]) -> None:
    """An evaluation file of a time-series training holds the time (and series) column, parsed as
    in the training data.

    :raises DataError: naming the column and row.
    """
    _check_columns(table, spec, "evaluation data")
    cells = table.cells(spec.time_column)
    for row in usable:
        _row_period(cells[row], row, spec.time_column, history.unit, spec.unit is None)
