"""Training jobs: config validation, fitting, evaluation and the result zip.

The job functions run in the executor and never raise: every problem becomes a failed
:class:`Outcome` with a message for the user.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .forecast import UNITS, Forecaster, History, TimeSeriesSpec, check_evaluation, check_history
from .learning import (
    BINARY,
    MULTI,
    REGRESSION,
    Model,
    NaiveBayes,
    Prediction,
    Ridge,
    classification_metrics,
    importance,
    regression_metrics,
    rounded,
)
from .tabular import FLOAT, TYPE_NAMES, DataError, Table, column_info, parse_number, read_csv

_TARGET_TYPES = (BINARY, MULTI, REGRESSION)
_TIME_UNITS = UNITS
_CONFIG_KEYS = frozenset(
    ["tc", "tt", "tv", "cv", "im", "tsm", "tsu", "tsc", "tsi", "tsf", "tst", "tss", "tsin", "tsine"]
)
SUMMARY_FORMAT = "predone-emulator/1"


class ConfigError(ValueError):
    """The training config breaks a vendor rule; the message says which."""


@dataclass(frozen=True)
class TrainConfig:
    """What of a training config the emulator's models use."""

    target: str
    target_type: str
    positive: str | None
    balanced: bool
    series: TimeSeriesSpec | None = None


def _flag(config: dict[str, Any], key: str) -> bool:
    value = config.get(key, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{key} must be true or false")


def _integer(config: dict[str, Any], key: str, minimum: int) -> int:
    value = config[key]
    try:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(value)
        number = int(value)
    except ValueError:
        raise ConfigError(f"{key} must be an integer") from None
    if number < minimum:
        raise ConfigError(f"{key} must be >= {minimum}")
    return number


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def parse_config(config: object) -> TrainConfig:
    """Validate a ``POST /models`` config (values may be strings or JSON numbers/booleans).

    :raises ConfigError: naming the first rule broken.
    """
    if not isinstance(config, dict):
        raise ConfigError("config must be an object")
    unknown = sorted(set(config) - _CONFIG_KEYS)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]}")
    target = config.get("tc")
    if not isinstance(target, str) or not target:
        raise ConfigError("tc is required")
    target_type = config.get("tt")
    if target_type not in _TARGET_TYPES:
        raise ConfigError(f"tt must be one of {', '.join(_TARGET_TYPES)}")
    if (target_type == BINARY) != ("tv" in config):
        raise ConfigError("tv is required for binary_classification and only allowed with it")
    if "cv" in config:
        _integer(config, "cv", -1)
    balanced = _flag(config, "im")
    if balanced and target_type == REGRESSION:
        raise ConfigError("im is only allowed for classification")
    series = _check_time_series(config, target_type, target) if _flag(config, "tsm") else None
    _flag(config, "tsin")
    if "tsi" in config:
        _integer(config, "tsi", 0)
    if "tsu" in config and config["tsu"] not in _TIME_UNITS:
        raise ConfigError(f"tsu must be one of {' '.join(_TIME_UNITS)}")
    tsine = config.get("tsine", [])
    if not isinstance(tsine, list) or not all(isinstance(name, str) for name in tsine):
        raise ConfigError("tsine must be a list of column names")
    positive = _text(config["tv"]) if target_type == BINARY else None
    return TrainConfig(target, target_type, positive, balanced, series)


def _check_time_series(config: dict[str, Any], target_type: str, target: str) -> TimeSeriesSpec:
    if target_type != REGRESSION:
        raise ConfigError("tsm is only allowed with regression")
    for key in ("tsc", "tsf", "tst"):
        if key not in config:
            raise ConfigError(f"{key} is required with tsm")
    start = _integer(config, "tsf", 1)
    end = _integer(config, "tst", start)
    time_column, series_column = _text(config["tsc"]), config.get("tss")
    if time_column == target:
        raise ConfigError("tsc (the time column) must not be the target column tc")
    if series_column is not None and (not isinstance(series_column, str) or not series_column):
        raise ConfigError("tss must be a column name")
    if series_column in (target, time_column):
        raise ConfigError("tss (the series column) must differ from tc and tsc")
    exceptions = config.get("tsine", [])
    if isinstance(exceptions, list) and {target, time_column, series_column} & set(exceptions):
        raise ConfigError("tsine lists other columns, not tc, tsc or tss")
    unit = config.get("tsu")
    return TimeSeriesSpec(
        time_column=time_column,
        unit=unit if isinstance(unit, str) else None,
        interval=_integer(config, "tsi", 0) if "tsi" in config else 0,
        start=start,
        end=end,
        series_column=series_column,
        known=_flag(config, "tsin"),
        exceptions=tuple(name for name in exceptions if isinstance(name, str)) if isinstance(exceptions, list) else (),
    )


@dataclass(frozen=True)
class JobSpec:
    """What a training job produces and from which model it starts.

    :param previous: the version served before a retraining and its model, to compare with.
    :param layout: how the result zip is laid out (one of :data:`RESULT_LAYOUTS`).
    """

    model_id: int
    version: int
    name: str
    config: TrainConfig
    previous: tuple[int, Model] | None = None
    layout: str = "summary-json"


@dataclass(frozen=True)
class Outcome:
    """A finished job: a model, or the message saying why there is none."""

    model: Model | None = None
    message: str | None = None


def train_files(spec: JobSpec, result: Path, learn: Path, evaluation: Path | None) -> Outcome:
    """A training from the uploaded training (and optional evaluation) CSV files.

    :param result: where to write the result zip.
    """
    return _guarded(spec, result, lambda: (read_csv(learn), read_csv(evaluation) if evaluation else None))


def retrain_upload(spec: JobSpec, result: Path, upload: Path, filename: str) -> Outcome:
    """A retraining from the uploaded CSV, or zip of ``train_src/`` and ``eval_src/`` CSV files.

    :param result: where to write the result zip.
    :param filename: the name the upload was announced with (its extension tells the format).
    """
    if filename.lower().endswith(".csv"):
        return _guarded(spec, result, lambda: (read_csv(upload), None))
    return _guarded(spec, result, lambda: _read_zip(upload))


def _guarded(spec: JobSpec, result: Path, load: Callable[[], tuple[Table, Table | None]]) -> Outcome:
    try:
        learn, evaluation = load()
        return Outcome(model=_train(spec, result, learn, evaluation))
    except DataError as exc:
        return Outcome(message=str(exc))
    except Exception as exc:  # the job must end failed, not vanish
        return Outcome(message=f"internal error: {exc!r}")


def _read_zip(path: Path) -> tuple[Table, Table | None]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir()]
            train = _member(members, "train_src")
            if train is None:
                raise DataError("the zip file holds no train_src/ CSV file")
            evaluation = _member(members, "eval_src")
            with archive.open(train) as source:
                learn = read_csv(source)
            if evaluation is None:
                return learn, None
            with archive.open(evaluation) as source:
                return learn, read_csv(source)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise DataError(f"the uploaded zip file is unreadable: {exc}") from exc


def _member(members: Sequence[zipfile.ZipInfo], folder: str) -> zipfile.ZipInfo | None:
    for info in members:
        parts = info.filename.split("/")
        if len(parts) >= 2 and parts[-2] == folder and parts[-1].lower().endswith(".csv"):
            return info
    return None


def _matches(cell: str, positive: str) -> bool:
    if cell == positive:
        return True
    left, right = parse_number(cell), parse_number(positive)
    return left is not None and left == right


@dataclass
class _Targets:
    """Usable rows of a table (positions) with their target: labels or numbers."""

    rows: list[int]
    labels: list[str]
    values: list[float]

    def pick(self, every_fifth: bool) -> _Targets:
        """The hold-out (every fifth usable row) or the rest."""
        keep = [(k % 5 == 4) == every_fifth for k in range(len(self.rows))]
        return _Targets(
            [row for row, kept in zip(self.rows, keep, strict=True) if kept],
            [label for label, kept in zip(self.labels, keep, strict=False) if kept],
            [value for value, kept in zip(self.values, keep, strict=False) if kept],
        )


class _Trainer:
    """Fits one job's model; the target column is validated on construction."""

    def __init__(self, config: TrainConfig, table: Table) -> None:
        self.config = config
        self.table = table
        if config.target not in table.columns:
            raise DataError(f"the target column '{config.target}' is not in the data")
        if config.target_type == REGRESSION and table.kind(config.target) != FLOAT:
            raise DataError(f"the regression target column '{config.target}' is not numeric")
        self.features = [name for name in table.columns if name != config.target]
        self.positive: str | None = None
        self.negative = ""
        self.history: History | None = None

    def targets(self, table: Table) -> _Targets:
        if self.config.target_type == REGRESSION:
            numbers = table.numbers(self.config.target)
            rows = [index for index, value in enumerate(numbers) if value is not None]
            return _Targets(rows, [], [number for number in numbers if number is not None])
        cells = table.cells(self.config.target)
        rows = [index for index, cell in enumerate(cells) if cell]
        return _Targets(rows, [cells[index] for index in rows], [])

    def relabel(self, targets: _Targets) -> _Targets:
        """For binary classification, every label but the positive one becomes the negative one."""
        positive = self.positive
        if positive is None:
            return targets
        labels = [positive if _matches(label, positive) else self.negative for label in targets.labels]
        return _Targets(targets.rows, labels, targets.values)

    def fit(self, targets: _Targets) -> Model:
        train = self.table.select(targets.rows)
        if self.config.series is not None and self.history is not None:
            return Forecaster(train, targets.values, self.config.series, self.history, self.config.target)
        if self.config.target_type == REGRESSION:
            return Ridge(train, self.features, targets.values)
        classes = self._classes(targets.labels)
        return NaiveBayes(
            train,
            self.features,
            self.relabel(targets).labels,
            classes,
            target_type=self.config.target_type,
            balanced=self.config.balanced,
        )

    def _classes(self, labels: list[str]) -> list[str]:
        """The classes; for binary the positive value as spelt in the data, then the most frequent
        other value (all other values are merged into it)."""
        target = self.config.target
        counts = Counter(labels)
        if len(counts) < 2:
            raise DataError(f"the target column '{target}' has a single class")
        wanted = self.config.positive
        if wanted is None:
            return sorted(counts)
        positive = next((label for label in counts if _matches(label, wanted)), None)
        if positive is None:
            raise DataError(f"the positive value '{wanted}' never occurs in the target column '{target}'")
        self.positive = positive
        self.negative = next(label for label, _ in counts.most_common() if label != positive)
        return [positive, self.negative]

    def metrics(self, checked: _Targets, predictions: list[Prediction]) -> dict[str, float | None]:
        if self.config.target_type == REGRESSION:
            return rounded(regression_metrics(checked.values, predictions))
        return rounded(classification_metrics(checked.labels, predictions, self.positive))


def _train(spec: JobSpec, result: Path, table: Table, evaluation_table: Table | None) -> Model:
    config = spec.config
    trainer = _Trainer(config, table)
    usable = trainer.targets(table)
    if len(usable.rows) < 10:
        raise DataError(f"the data has {len(usable.rows)} usable rows; at least 10 are needed")
    if config.series is not None:
        trainer.history = check_history(table, config.series, config.target, usable.rows)
    final: Model | None = None
    if evaluation_table is None:
        method, evaluation_table = "holdout", table
        fitted, checked = usable.pick(every_fifth=False), usable.pick(every_fifth=True)
        if trainer.history is not None:
            method, (fitted, checked) = "backtest", _backtest(usable, trainer.history, config)
            # A forecast starts from the data's end: the served model learns the latest periods too.
            final = trainer.fit(usable)
    else:
        if config.target not in evaluation_table.columns:
            raise DataError(f"the target column '{config.target}' is not in the evaluation data")
        method, fitted, checked = "evaluation_file", usable, trainer.targets(evaluation_table)
        if not checked.rows:
            raise DataError("the evaluation data has no usable row")
        if config.series is not None and trainer.history is not None:
            check_evaluation(evaluation_table, config.series, trainer.history, checked.rows)
    model = trainer.fit(fitted)
    checked = trainer.relabel(checked)
    columns = evaluation_table.columns
    rows = [dict(zip(columns, evaluation_table.rows[index], strict=True)) for index in checked.rows]
    predictions = [model.predict(row) for row in rows]
    ranked = sorted(importance(model.features, predictions).items(), key=lambda item: -item[1])
    summary: dict[str, Any] = {
        "format": SUMMARY_FORMAT,
        "model_id": spec.model_id,
        "version": spec.version,
        "name": spec.name,
        "target_column": config.target,
        "target_type": config.target_type,
        "algorithm": model.algorithm,
        "trained_rows": len(fitted.rows),
        "evaluation": {"method": method, "rows": len(checked.rows)},
        "metrics": trainer.metrics(checked, predictions),
        "feature_importance": [{"column": name, "importance": round(score, 6)} for name, score in ranked],
    }
    if final is not None:
        summary["trained_rows"] = len(usable.rows)  # evaluated as fitted on the rows before the window
        model = final
    if isinstance(model, Forecaster):
        summary["time_series"] = model.summary()
    if spec.previous is not None:
        version, previous = spec.previous
        earlier = [previous.predict(row) for row in rows]
        summary["previous"] = {"version": version, "metrics": trainer.metrics(checked, earlier)}
    _write_result(result, summary, table, config.target, model, checked, predictions, spec.layout)
    return model


def _backtest(usable: _Targets, history: History, config: TrainConfig) -> tuple[_Targets, _Targets]:
    """Fitted on the periods up to ``tst`` intervals before the data's end; checked on the window
    ``tsf``..``tst`` after that point (the last periods of the data), as a forecast made then."""
    assert config.series is not None
    origin = history.last - config.series.end * history.interval
    first = origin + config.series.start * history.interval

    def part(keep: Callable[[int], bool]) -> _Targets:
        chosen = [k for k, row in enumerate(usable.rows) if keep(history.periods[row] or 0)]
        return _Targets([usable.rows[k] for k in chosen], [], [usable.values[k] for k in chosen])

    fitted, checked = part(lambda number: number <= origin), part(lambda number: number >= first)
    if len(fitted.rows) < 10:
        raise DataError(
            f"the data before the last {history.words(config.series.end)} (tst={config.series.end}) have "
            f"{len(fitted.rows)} usable rows; at least 10 are needed to check a forecast"
        )
    return fitted, checked


def _csv_text(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _write_result(
    path: Path,
    summary: dict[str, Any],
    table: Table,
    target: str,
    model: Model,
    checked: _Targets,
    predictions: list[Prediction],
    layout: str = "summary-json",
) -> None:
    info = column_info(table, target)
    columns = [["column_name", "column_type", "unique_count", "data_count", "missing_count", "cor_score"]]
    for entry in info["training_data_columns"]:
        cor_score = entry["cor_score"]
        columns.append(
            [
                entry["name"],
                TYPE_NAMES[entry["initial_data_type"]],
                str(entry["unique_count"]),
                str(entry["data_count"]),
                str(entry["missing_count"]),
                "" if cor_score is None else repr(round(cor_score, 6)),
            ]
        )
    actual = checked.labels or [repr(value) for value in checked.values]
    validation = [["row_number", "actual", *model.output_header()]]
    for row, truth, prediction in zip(checked.rows, actual, predictions, strict=True):
        validation.append([str(row + 1), truth, *model.output_cells(prediction)])
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        _write_metrics(archive, summary, layout)
        archive.writestr("column_info.csv", "\ufeff" + _csv_text(columns))
        archive.writestr("validation_predictions.csv", _csv_text(validation))


#: Result zip layouts (``--result-layout``). The vendor's is undocumented; the alternatives let
#: tests prove that metric discovery does not depend on the emulator's own summary file.
RESULT_LAYOUTS = ("summary-json", "metrics-csv-ja", "nested-json", "no-metrics")
#: Display names used by the alternative layouts, as a real report might spell them.
_JA_NAMES = {
    "auc": "AUC", "accuracy": "精度", "precision": "適合率", "recall": "再現率", "f1": "F値",
    "macro_f1": "マクロF値", "log_loss": "対数損失", "rmse": "RMSE", "mae": "MAE", "r2": "決定係数",
}  # fmt: skip
_EN_NAMES = {
    "auc": "AUC", "accuracy": "Accuracy", "precision": "Precision", "recall": "Recall", "f1": "F1 Score",
    "macro_f1": "Macro F1", "log_loss": "Log Loss", "rmse": "RMSE", "mae": "MAE", "r2": "R²",
}  # fmt: skip


def _write_metrics(archive: zipfile.ZipFile, summary: dict[str, Any], layout: str) -> None:
    metrics = summary["metrics"]
    previous = (summary.get("previous") or {}).get("metrics")
    if layout == "summary-json":
        archive.writestr("model_summary.json", json.dumps(summary, ensure_ascii=False, indent=2))
    elif layout == "metrics-csv-ja":
        # Shift-JIS, as Excel writes it in Japan; one metric per row, the served model beside it.
        header = ["評価指標", "再学習後のモデル"] + (["再学習前のモデル"] if previous else [])
        rows = [header]
        for name, value in metrics.items():
            row = [_JA_NAMES.get(name, name), "" if value is None else repr(value)]
            if previous:
                before = previous.get(name)
                row.append("" if before is None else repr(before))
            rows.append(row)
        archive.writestr("評価結果/評価指標.csv", _csv_text(rows).encode("cp932"))
    elif layout == "nested-json":

        def scores(values: dict[str, Any]) -> list[dict[str, Any]]:
            return [{"name": _EN_NAMES.get(k, k), "value": v} for k, v in values.items() if v is not None]

        report: dict[str, Any] = {
            "report": {"model": {"id": summary["model_id"], "version": summary["version"]}},
            "evaluation": {"retrained_model": {"scores": scores(metrics)}},
        }
        if previous:
            report["evaluation"]["previous_model"] = {"scores": scores(previous)}
        archive.writestr("report/evaluation/result.json", json.dumps(report, ensure_ascii=False))
    elif layout != "no-metrics":
        raise ValueError(f"unknown result layout {layout!r}; one of {', '.join(RESULT_LAYOUTS)}")
