"""The inputs and outputs of inference requests (``pr``, ``ar``, ``ad``, ``nc``, ``nr``, ``pc``)."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from dataclasses import dataclass
from typing import Any

from .learning import Model, Prediction
from .tabular import Table, read_csv

_REASONS = 3
_INPUTS = ("pr", "ar", "ad", "nc", "nr", "pc")


class InvalidInput(ValueError):
    """The request's inputs are unusable; the message says why."""


def _flag(inputs: dict[str, Any], name: str) -> bool:
    value = inputs.get(name, False)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidInput(f"input {name} must be a boolean")
    return value


@dataclass
class InferenceRequest:
    """The decoded ``inputs`` of an inference request."""

    table: Table
    reasons: bool
    echo: bool
    no_label: bool
    no_row_number: bool
    id_column: str | None

    @classmethod
    def parse(cls, body: dict[str, Any], model: Model) -> InferenceRequest:
        """Decode and check the body of an inference request.

        :raises InvalidInput: saying what is wrong.
        """
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(item, dict) for item in inputs):
            raise InvalidInput("inputs must be a list of objects")
        values = {item.get("name"): item.get("data") for item in inputs}
        unknown = sorted(str(name) for name in values if name not in _INPUTS)
        if unknown:
            raise InvalidInput(f"unknown input {unknown[0]}")
        if not isinstance(values.get("pr"), str):
            raise InvalidInput("input pr (base64 CSV) is required")
        try:
            table = read_csv(base64.b64decode(values["pr"], validate=True))
        except (binascii.Error, ValueError) as exc:
            raise InvalidInput(f"input pr is not base64 CSV data: {exc}") from None
        if not table.rows:
            raise InvalidInput("input pr has no data row")
        model.check_input(table)
        missing = [name for name in model.features if name not in table.columns]
        if missing:
            raise InvalidInput(f"missing feature columns: {', '.join(missing)}")
        id_column = values.get("pc")
        if id_column is not None and (not isinstance(id_column, str) or id_column not in table.columns):
            raise InvalidInput("input pc must name a column of pr")
        return cls(
            table,
            _flag(values, "ar"),
            _flag(values, "ad"),
            _flag(values, "nc"),
            _flag(values, "nr"),
            id_column,
        )

    def score(self, model: Model) -> list[dict[str, str]]:
        """The ``outputs`` of the answer: ``prediction_valid.csv`` and, with ``ar``, the reasons."""
        numbering = [] if self.no_row_number else ["row_number"]
        reason_columns = [f"reason_{n}{suffix}" for n in range(1, _REASONS + 1) for suffix in ("", "_effect")]
        valid = [
            ([self.id_column] if self.id_column else [])
            + numbering
            + model.output_header(not self.no_label)
            + (self.table.columns if self.echo else [])
        ]
        analysis = [numbering + reason_columns]
        for number, cells in enumerate(self.table.rows, start=1):
            row = dict(zip(self.table.columns, cells, strict=True))
            prediction = model.predict(row)
            numbering = [] if self.no_row_number else [str(number)]
            valid.append(
                ([row[self.id_column]] if self.id_column else [])
                + numbering
                + model.output_cells(prediction, not self.no_label)
                + (cells if self.echo else [])
            )
            if self.reasons:
                analysis.append(numbering + _reasons(prediction, row, len(reason_columns)))
        outputs = [_output("prediction_valid.csv", valid)]
        if self.reasons:
            outputs.append(_output("prediction_analysis.csv", analysis))
        return outputs


def _reasons(prediction: Prediction, row: dict[str, str], width: int) -> list[str]:
    """The strongest ``_REASONS`` contributions as ``column=value`` and effect cells, padded to ``width``."""
    ranked = sorted(prediction.contributions.items(), key=lambda item: (-abs(item[1]), item[0]))
    cells = [cell for name, effect in ranked[:_REASONS] for cell in (f"{name}={row[name]}", repr(round(effect, 6)))]
    return cells + [""] * (width - len(cells))


def _output(name: str, rows: list[list[str]]) -> dict[str, str]:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return {"name": name, "data": base64.b64encode(buffer.getvalue().encode()).decode("ascii")}
