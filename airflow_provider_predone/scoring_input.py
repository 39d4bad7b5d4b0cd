"""
The check of a scoring input's columns before batch scoring sends it.

The vendor publishes no schema of a deployed model (which columns it needs, in which types), so
the first answer is where the model's columns become known: the input's header and first row
are scored alone, and a schema refusal ends the run there, naming the columns the service says
are missing, instead of after ``concurrency`` rows in flight were refused each (issue 26).
"""

from __future__ import annotations

import csv
import io
import re
from typing import TYPE_CHECKING

from airflow_provider_predone.exceptions import ApiError, BadRequestError

if TYPE_CHECKING:
    from airflow_provider_predone.files import DataSource
    from airflow_provider_predone.hooks.predone import PredictionOneHook
    from airflow_provider_predone.protocol import predone as api

# "missing feature columns: promo, price" (the emulator); the vendor's wording is not documented,
# so anything else is quoted as it is.
_MISSING = re.compile(r"missing[^:]*:\s*(.+)", re.IGNORECASE)


def first_row(source: DataSource, encoding: str) -> tuple[list[str], int, bytes] | None:
    """
    ``(header, row number, header + first non-blank row as UTF-8 CSV)``, the request the
    scorer sends first, or ``None`` for an input without data rows.
    """
    with source.open() as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding=encoding, newline=""))
        try:
            header = next(reader, None)
            if header is None:
                return None
            for number, row in enumerate(reader, start=1):
                if any(cell.strip() for cell in row):
                    buffer = io.StringIO()
                    csv.writer(buffer, lineterminator="\n").writerows([header, row])
                    return header, number, buffer.getvalue().encode()
        except UnicodeDecodeError:  # the scorer names the row and the encoding
            return None
    return None


def check_first_row(
    hook: PredictionOneHook,
    prediction_api: api.PredictionApi,
    source: DataSource,
    options: api.InferenceOptions,
    encoding: str,
) -> None:
    """
    Score the input's first row alone, before the rest is sent.

    :raises BadRequestError: when the service refuses the row as not matching the model's
        schema, naming the missing columns where its answer names them (a permanent error:
        the task is not retried).
    :raises ApiError: any other failure of that row, naming it, as the scorer would.
    """
    found = first_row(source, encoding)
    if found is None:
        return
    header, number, request = found
    try:
        hook.infer(prediction_api, request, options)
    except BadRequestError as exc:
        said = exc.vendor_message or str(exc)
        match = _MISSING.search(said)
        named = [c.strip() for c in re.split(r"[,;]", match.group(1))] if match else []
        missing = [c for c in named if c and c not in header]
        lacks = f"lacks the model's column(s) {missing}" if missing else "does not match the model's schema"
        raise BadRequestError(
            f"{source.field}: {source} {lacks}: prediction API {prediction_api.classifier_id} refused its "
            f"row {number} ({said!r}), so no other row was sent. The input's columns: {header}",
            endpoint=exc.endpoint,
            http_status=exc.http_status,
            code=exc.code,
            error=exc.error,
            vendor_message=exc.vendor_message,
        ) from None
    except ApiError as exc:
        raise type(exc)(
            f"Row {number}: {exc}",
            endpoint=exc.endpoint,
            http_status=exc.http_status,
            code=exc.code,
            error=exc.error,
            vendor_message=exc.vendor_message,
            retry_after=exc.retry_after,
        ) from None
