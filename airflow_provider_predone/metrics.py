"""
Model metrics from result archives whose layout the vendor does not document, and the
ready-made quality gate that compares them.

Discovery does not trust one file name: every JSON and CSV member of the extracted archive
is searched for metric names in English or Japanese (``AUC``, ``accuracy`` / ``精度``,
``precision`` / ``適合率``, ``recall`` / ``再現率``, ``RMSE``, ``MAE``, ``R2`` / ``決定係数``, ...),
case-, width- and space-insensitively. A value found under a key, column or row that says
"previous" (``previous``, ``before``, ``old``, ``baseline``, ``前回``, ``再学習前``, ...) is the
served model's; anything else is the new model's. When that guess cannot work for an
archive, a ``metrics_reader`` (a callable on the extracted folder) replaces it.

The same pass finds the archive's summary, what it says of the model beside its metrics
(version, model id, row counts): the first JSON object (shallower paths first) that has an
integer under one of :data:`SUMMARY_KEYS` at its top level, or whose member calls itself a
summary (:data:`SUMMARY_WORDS` in its name). No file name is assumed, so production code reads
every result archive through this module, whatever its members are called.

Standard library and light modules of this package only: operators import this module at DAG parse.
"""

from __future__ import annotations

import csv
import logging
import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from airflow_provider_predone.exceptions import InvalidInputError, MetricNotFoundError
from airflow_provider_predone.files import DEFAULT_LIMITS, MemberTooLargeError, load_json_member

log = logging.getLogger(__name__)

#: What a ``metrics_reader`` returns: the new model's metrics, or ``(new, previous)``.
MetricsReader = Callable[[Path], Any]

#: Canonical metric name → the names it goes by (compared after :func:`_normalise`).
METRIC_NAMES: Mapping[str, tuple[str, ...]] = {
    "auc": ("auc", "rocauc", "aucroc", "rocの曲線下面積", "曲線下面積"),
    "accuracy": ("accuracy", "acc", "精度", "正解率", "正確度"),
    "precision": ("precision", "適合率", "精密度"),
    "recall": ("recall", "再現率", "感度", "sensitivity"),
    "f1": ("f1", "f1score", "fscore", "fmeasure", "f値", "f1値", "f1スコア", "f尺度"),
    "macro_f1": ("macrof1", "f1macro", "マクロf1", "マクロf値"),
    "log_loss": ("logloss", "crossentropy", "対数損失", "ログロス", "交差エントロピー"),
    "rmse": ("rmse", "rootmeansquarederror", "二乗平均平方根誤差", "平均二乗平方根誤差", "平均平方二乗誤差"),
    "mse": ("mse", "meansquarederror", "平均二乗誤差"),
    "mae": ("mae", "meanabsoluteerror", "平均絶対誤差"),
    "mape": ("mape", "meanabsolutepercentageerror", "平均絶対パーセント誤差", "平均絶対誤差率"),
    "r2": ("r2", "rsquared", "r^2", "決定係数"),
}
_ALIASES = {alias: name for name, aliases in METRIC_NAMES.items() for alias in aliases}
#: Metrics where lower is better (for :func:`metric_gate`'s default direction).
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mse", "mae", "mape"})
#: Words marking the served (previous) model's metrics in a key, header or row label.
PREVIOUS_WORDS = (
    "previous", "prev", "before", "old", "baseline", "served", "前回", "再学習前", "変更前", "以前", "旧", "現行",
)  # fmt: skip
#: Keys naming a metric in ``{"name": "AUC", "value": 0.8}`` records.
_NAME_KEYS = ("name", "metric", "metricname", "指標", "評価指標", "項目", "指標名")
_VALUE_KEYS = ("value", "score", "値", "スコア", "評価値")
#: JSON members larger than this are not parsed (predictions, not summaries); an operator's
#: ``result_limits`` (``max_json_bytes``) changes it for its task.
MAX_JSON_BYTES = DEFAULT_LIMITS.max_json_bytes
#: Top-level keys of a JSON member that make it the archive's summary (see :attr:`FoundMetrics.summary`).
SUMMARY_KEYS = ("model_id", "version", "trained_rows")
#: Words in a JSON member's name that make its object the archive's summary whatever its keys.
SUMMARY_WORDS = ("summary", "サマリ", "概要")
#: CSV rows read per member: metrics tables are small; prediction files are long.
MAX_CSV_ROWS = 200
#: Characters read per CSV member at most, so one endless line is not read whole.
MAX_CSV_CHARS = 1024**2


def _normalise(text: str) -> str:
    """``"Log Loss"``, ``"log_loss"``, full-width ``"LOG-LOSS"`` → ``"logloss"``; ``"R²"`` → ``"r2"``."""
    # NFKC first: full-width letters, colons and brackets become their ASCII forms.
    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s_\-\.・:()\[\]「」]+", "", folded)


def canonical_name(text: Any) -> str | None:
    """The canonical metric a key or header stands for (``"適合率"`` → ``"precision"``), or ``None``."""
    if not isinstance(text, str):
        return None
    return _ALIASES.get(_normalise(text))


def _is_previous(label: str) -> bool:
    folded = _normalise(label)
    return any(word in folded for word in PREVIOUS_WORDS)


def _number(value: Any) -> float | None:
    """A finite number from a JSON number or a numeric string (``"85.3%"`` → ``0.853``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = unicodedata.normalize("NFKC", value).strip().replace(",", "")
        percent = text.endswith("%")
        try:
            number = float(text[:-1] if percent else text) / (100 if percent else 1)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class FoundMetrics:
    """
    What discovery found in an extracted archive.

    :param metrics: the new (retrained) model's metrics by canonical name, or ``None``.
    :param previous_metrics: the served model's metrics, or ``None``.
    :param sources: the members the values came from.
    :param members: every file of the archive (relative paths), for error messages.
    :param summary: the archive's summary (a JSON object saying the model's version, id or row
        counts, see :func:`is_summary`), or ``None``.
    """

    metrics: dict[str, float] | None
    previous_metrics: dict[str, float] | None
    sources: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    summary: dict[str, Any] | None = None


class _Collector:
    """Merges metric sets in discovery order: the first value of each metric wins."""

    def __init__(self) -> None:
        self.new: dict[str, float] = {}
        self.previous: dict[str, float] = {}
        self.sources: list[str] = []
        self.summary: dict[str, Any] | None = None

    def offer_summary(self, member: str, document: Any) -> None:
        """Keep ``document`` as the archive's summary if it is the first that is one."""
        if self.summary is None and is_summary(document, member):
            self.summary = document

    def add(self, source: str, previous: bool, values: Mapping[str, float]) -> None:
        if not values:
            return
        target = self.previous if previous else self.new
        for name, value in values.items():
            target.setdefault(name, value)
        if source not in self.sources:
            self.sources.append(source)


def is_summary(document: Any, member: str = "") -> bool:
    """
    Whether a JSON document is an archive summary: an object with an integer under one of
    :data:`SUMMARY_KEYS` (``version``, ``model_id``, ``trained_rows``), or any object in a member
    whose name says it is one (:data:`SUMMARY_WORDS`).

    :param member: the member's path in the archive.
    """
    if not isinstance(document, dict):
        return False
    name = unicodedata.normalize("NFKC", member.rpartition("/")[2]).casefold()
    return any(word in name for word in SUMMARY_WORDS) or any(
        isinstance(document.get(key), int) and not isinstance(document.get(key), bool) for key in SUMMARY_KEYS
    )


def _json_first(members: list[str]) -> list[str]:
    """JSON members before the others, shallower paths before deeper ones: the order discovery reads in."""
    return sorted(members, key=lambda m: (not m.lower().endswith(".json"), m.count("/"), m))


def find_summary(directory: Path, *, max_json_bytes: int = MAX_JSON_BYTES) -> dict[str, Any] | None:
    """
    The summary of an extracted archive (see :attr:`FoundMetrics.summary`), or ``None``.

    :param max_json_bytes: JSON members larger than this are skipped unread.
    """
    for member in _json_first(members_of(directory)):
        if not member.lower().endswith(".json"):
            break
        try:
            document = load_json_member(directory / member, max_json_bytes)
        except (OSError, ValueError):
            continue
        if is_summary(document, member):
            return dict(document)
    return None


def members_of(directory: Path) -> list[str]:
    """Every file below ``directory``, as sorted POSIX relative paths."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def discover(directory: Path, *, max_json_bytes: int = MAX_JSON_BYTES) -> FoundMetrics:
    """
    Search every JSON and CSV member of an extracted archive for metrics.

    JSON members are read before CSV members, shallower paths before deeper ones; when two
    members name the same metric the first one found wins.

    :param max_json_bytes: JSON members larger than this are skipped unread.
    """
    members = members_of(directory)
    found = _Collector()
    for member in _json_first(members):
        path = directory / member
        suffix = path.suffix.lower()
        if suffix == ".json":
            _from_json(member, path, found, max_json_bytes)
        elif suffix in (".csv", ".tsv"):
            _from_csv(member, path, found)
    return FoundMetrics(
        metrics=found.new or None,
        previous_metrics=found.previous or None,
        sources=tuple(found.sources),
        members=tuple(members),
        summary=found.summary,
    )


# --- JSON ------------------------------------------------------------------------------------


def _from_json(member: str, path: Path, found: _Collector, max_bytes: int) -> None:
    try:
        document = load_json_member(path, max_bytes)
    except MemberTooLargeError as exc:  # predictions, not a summary, most likely; said, as it may be neither
        log.warning("%s", exc)
        return
    except (OSError, ValueError):  # not JSON: skipped
        return
    found.offer_summary(member, document)
    sets: list[tuple[int, bool, dict[str, float]]] = []
    try:
        _walk(document, (), sets)
    except RecursionError:  # nested deeper than the stack allows: no metrics table looks like that
        return
    for _, previous, values in sorted(sets, key=lambda s: s[0]):
        found.add(member, previous, values)


def _walk(node: Any, path: tuple[str, ...], sets: list[tuple[int, bool, dict[str, float]]]) -> None:
    previous = any(_is_previous(part) for part in path)
    if isinstance(node, Mapping):
        direct = {}
        for key, value in node.items():
            name, number = canonical_name(key), _number(value)
            if name and number is not None:
                direct[name] = number
        record = _name_value_record(node)
        if record:
            direct.update(record)
        if direct:
            sets.append((len(path), previous, direct))
        for key, value in node.items():
            if isinstance(value, Mapping | list):
                _walk(value, (*path, str(key)), sets)
    elif isinstance(node, list):
        for item in node:
            _walk(item, path, sets)


def _name_value_record(node: Mapping[str, Any]) -> dict[str, float]:
    """``{"name": "AUC", "value": 0.8}`` (also ``指標`` / ``値``) as ``{"auc": 0.8}``."""
    keys = {_normalise(str(k)): k for k in node}
    name = next((canonical_name(node[keys[k]]) for k in _NAME_KEYS if k in keys), None)
    if not name:
        return {}
    value = next((_number(node[keys[k]]) for k in _VALUE_KEYS if k in keys), None)
    return {name: value} if value is not None else {}


# --- CSV -------------------------------------------------------------------------------------


def _csv_rows(path: Path) -> list[list[str]]:
    """The first rows of a CSV: UTF-8 (with or without BOM), else Shift-JIS as Excel writes it."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    for encoding in ("utf-8-sig", "cp932"):
        try:
            with path.open(encoding=encoding, newline="") as handle:
                rows = []
                for row in csv.reader(_bounded_lines(handle, MAX_CSV_CHARS), delimiter=delimiter):
                    rows.append([cell.strip() for cell in row])
                    if len(rows) >= MAX_CSV_ROWS:
                        break
                return [row for row in rows if any(row)]
        except (UnicodeDecodeError, csv.Error):
            continue
        except OSError:
            return []
    return []


def _bounded_lines(handle: IO[str], limit: int) -> Iterator[str]:
    """The lines of ``handle`` within its first ``limit`` characters; a line cut by the limit is dropped."""
    left = limit
    while left > 0 and (line := handle.readline(left)):
        left -= len(line)
        if left <= 0 and not line.endswith(("\n", "\r")):
            return
        yield line


def _from_csv(member: str, path: Path, found: _Collector) -> None:
    rows = _csv_rows(path)
    if not rows:
        return
    header = rows[0]
    header_metrics = [canonical_name(cell) for cell in header]
    if any(header_metrics) and not any(_number(cell) is not None for cell in header):
        _wide(member, header, header_metrics, rows[1:], found)
    else:
        _long(member, rows, found)


def _wide(member: str, header: list[str], names: list[str | None], rows: list[list[str]], found: _Collector) -> None:
    """Metrics as columns, one row per model; a row labelled "previous" is the served model's."""
    seen_new = False
    for row in rows:
        values = {n: v for n, cell in zip(names, row, strict=False) if n and (v := _number(cell)) is not None}
        if not values:
            continue
        labels = " ".join(cell for n, cell in zip(names, row, strict=False) if not n)
        if _is_previous(labels):
            found.add(member, True, values)
        elif not seen_new:
            found.add(member, False, values)
            seen_new = True


def _long(member: str, rows: list[list[str]], found: _Collector) -> None:
    """One metric per row: a name cell, then value cells whose header says which model."""
    header = rows[0] if not any(canonical_name(cell) for cell in rows[0]) else []
    new: dict[str, float] = {}
    previous: dict[str, float] = {}
    for row in rows[1:] if header else rows:
        index = next((i for i, cell in enumerate(row) if canonical_name(cell)), None)
        if index is None:
            continue
        name = canonical_name(row[index])
        assert name is not None
        for column in range(index + 1, len(row)):
            value = _number(row[column])
            if value is None:
                continue
            title = header[column] if column < len(header) else ""
            if title and _is_previous(title):
                previous.setdefault(name, value)
            else:
                new.setdefault(name, value)
    found.add(member, False, new)
    found.add(member, True, previous)


# --- reading and gating --------------------------------------------------------------------


def _float_metrics(value: Any, what: str) -> dict[str, float] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"metrics_reader must return a mapping of metrics or (metrics, previous), got {what}")
    out = {}
    for key, raw in value.items():
        number = _number(raw)
        if number is not None:
            out[canonical_name(key) or str(key)] = number
    return out or None


def read_metrics(
    directory: Path, reader: MetricsReader | None = None, *, max_json_bytes: int = MAX_JSON_BYTES
) -> FoundMetrics:
    """
    The metrics of an extracted archive: ``reader(directory)`` when given, else :func:`discover`.

    ``reader`` returns the new model's metrics as a mapping, or a pair ``(metrics,
    previous_metrics)``; names are canonicalised where they are known (``"AUC"`` → ``"auc"``).

    :param max_json_bytes: for :func:`discover`: JSON members larger than this are skipped unread.
    """
    if reader is None:
        return discover(directory, max_json_bytes=max_json_bytes)
    if not callable(reader):
        raise InvalidInputError(f"metrics_reader must be a callable taking the extracted folder, got {reader!r}")
    value = reader(directory)
    name = getattr(reader, "__name__", repr(reader))
    if isinstance(value, tuple) and len(value) == 2:
        new, previous = _float_metrics(value[0], repr(value)), _float_metrics(value[1], repr(value))
    else:
        new, previous = _float_metrics(value, repr(value)), None
    return FoundMetrics(
        new,
        previous,
        sources=(f"metrics_reader {name}",),
        members=tuple(members_of(directory)),
        summary=find_summary(directory, max_json_bytes=max_json_bytes),
    )


@dataclass(frozen=True)
class RetrainResult:
    """
    What a quality gate is given to decide on a retrained model.

    :param path: the folder holding the extracted result archive.
    :param metrics: the retrained model's metrics (canonical names: ``auc``, ``accuracy``,
        ``rmse``, ...), where discovery or the ``metrics_reader`` found them, else ``None``.
    :param previous_metrics: the metrics of the model served until now, where found.
    :param summary: the archive's summary (version, model id, row counts; see
        :attr:`FoundMetrics.summary`), where it has one (else ``None``).
    :param members: every file of the archive, relative to ``path``.
    """

    path: Path
    metrics: dict[str, Any] | None
    previous_metrics: dict[str, Any] | None
    summary: dict[str, Any] | None = None
    members: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class GateVerdict:
    """
    A quality gate's decision with its reasons; truthy when accepted.

    :param accepted: switch or not.
    :param reason: one sentence for the log and the XCom.
    :param metric: the metric compared, when the gate compares one.
    :param value: its value for the retrained model.
    :param previous: its value for the served model (``None``: nothing to compare with).
    :param threshold: the value the retrained model had to reach.
    """

    accepted: bool
    reason: str
    metric: str | None = None
    value: float | None = None
    previous: float | None = None
    threshold: float | None = None

    def __bool__(self) -> bool:
        return self.accepted

    def record(self) -> dict[str, Any]:
        """For XCom and the asset event: plain values, unknown ones left out."""
        fields = {
            "verdict": "accepted" if self.accepted else "refused",
            "reason": self.reason,
            "metric": self.metric,
            "value": self.value,
            "previous": self.previous,
            "threshold": self.threshold,
        }
        return {k: v for k, v in fields.items() if v is not None}


def missing_metric_message(metric: str, metrics: Mapping[str, Any] | None, members: tuple[str, ...]) -> str:
    """Says what was found and how to read the archive instead."""
    listed = ", ".join(members[:40]) or "(none)"
    more = f" and {len(members) - 40} more" if len(members) > 40 else ""
    known = sorted((metrics or {}).keys())
    return (
        f"Metric {metric!r} was not found in the result archive (found: {known or 'no metric'}; "
        f"members: {listed}{more}). Pass metrics_reader=<callable taking the extracted folder and "
        "returning {name: value} or (new, previous)> to metric_gate or to the operator."
    )


def metric_gate(
    metric: str,
    *,
    higher_is_better: bool | None = None,
    min_gain: float = 0.0,
    metrics_reader: MetricsReader | None = None,
) -> Callable[[RetrainResult], GateVerdict]:
    """
    A ready-made quality gate: accept when ``metric`` is at least as good as the served
    model's, by ``min_gain``.

    A metric missing from the archive is not a refusal: the gate raises
    :class:`~airflow_provider_predone.exceptions.MetricNotFoundError` listing the archive's
    members. Without a previous value to compare with, the new model is accepted (and the
    verdict says so).

    :param metric: a canonical name (``auc``, ``accuracy``, ``rmse``, ...) or any alias
        (``AUC``, ``精度``, ``決定係数``).
    :param higher_is_better: default ``False`` for error metrics (``rmse``, ``mae``,
        ``log_loss``, ...), else ``True``.
    :param min_gain: how much better the new model must be.
    :param metrics_reader: read the metrics from the extracted archive folder yourself:
        ``callable(path) -> {name: value}`` or ``(new, previous)``.
    """
    name = canonical_name(metric) or metric
    higher = (name not in LOWER_IS_BETTER) if higher_is_better is None else higher_is_better
    if metrics_reader is not None and not callable(metrics_reader):
        raise InvalidInputError(f"metrics_reader must be a callable, got {metrics_reader!r}")

    def gate(result: RetrainResult) -> GateVerdict:
        metrics, previous = result.metrics, result.previous_metrics
        if metrics_reader is not None:
            found = read_metrics(result.path, metrics_reader)
            metrics, previous = found.metrics, found.previous_metrics
        new = (metrics or {}).get(name)
        old = (previous or {}).get(name)
        if new is None:
            raise MetricNotFoundError(missing_metric_message(name, metrics, result.members))
        if old is None:
            return GateVerdict(True, f"{name} {new} with no previous value to compare with", name, new)
        threshold = old + min_gain if higher else old - min_gain
        accepted = new >= threshold if higher else new <= threshold
        relation = (">=" if higher else "<=") if accepted else ("<" if higher else ">")
        reason = f"{name} {new} {relation} threshold {threshold:g} (previous {old}, min_gain {min_gain})"
        return GateVerdict(bool(accepted), reason, name, new, old, threshold)

    gate.__name__ = f"metric_gate_{name}"
    return gate


def verdict_of(gate: Callable[[RetrainResult], Any], result: RetrainResult) -> GateVerdict:
    """Run any quality gate; a plain ``bool`` answer becomes a verdict naming the gate."""
    answer = gate(result)
    if isinstance(answer, GateVerdict):
        return answer
    name = getattr(gate, "__name__", repr(gate))
    return GateVerdict(bool(answer), f"quality_gate {name} returned {bool(answer)}")
