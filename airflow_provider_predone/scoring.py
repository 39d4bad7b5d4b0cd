"""
Batch scoring through a prediction API: a CSV of any size, one row per request, a bounded
number of requests in flight, results written in input order.

A slot is refilled as soon as any answer arrives, not only the oldest: under load answers
overtake each other, and waiting for the oldest left slots idle (benchmark P4: about a tenth
of the rate at 32 in flight). Memory stays constant: rows are read as they are sent, and
answers wait for their turn to be written in a window of ``WINDOW * concurrency`` rows at most.
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_predone import _event_loop, files
from airflow_provider_predone.exceptions import ApiError, InvalidInputError, UnexpectedResponseError
from airflow_provider_predone.protocol import predone as api

if TYPE_CHECKING:
    from airflow_provider_predone.hooks.predone import PredictionOneAsyncClient, PredictionOneHook

PREDICTIONS = "prediction_valid.csv"
REASONS = "prediction_analysis.csv"
ROW_NUMBER = "row_number"
PROGRESS_EVERY = 10.0  # seconds between progress lines
WINDOW = 4  # rows sent but not yet written, per slot: how far answers may run ahead of the oldest


@dataclass
class ScoreCounts:
    rows_in: int = 0
    rows_scored: int = 0
    model_version: int | None = None


def _csv_line(row: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    return buffer.getvalue()


def _parse(name: str, data: bytes, row_number: int) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    if not rows:
        raise UnexpectedResponseError(f"Inference of row {row_number}: {name} is empty", endpoint="Inference")
    return rows[0], rows[1:]


class _Sink:
    """One output CSV: the header of the first answer, then ``row_number`` + each answer's rows."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._stream = stream
        self._name = name
        self._header: list[str] | None = None

    def write(self, row_number: int, data: bytes) -> int:
        header, rows = _parse(self._name, data, row_number)
        if self._header is None:
            self._header = header
            self._stream.write(_csv_line([ROW_NUMBER, *header]).encode())
        elif header != self._header:
            raise UnexpectedResponseError(
                f"Inference of row {row_number}: {self._name} columns changed from {self._header} to {header}",
                endpoint="Inference",
            )
        for row in rows:
            self._stream.write(_csv_line([str(row_number), *row]).encode())
        return len(rows)


class BatchScorer:
    """
    Scores a CSV with one prediction API.

    :param hook: resolves the connection (one async session for the whole run).
    :param prediction_api: the API to call (its URL and inference key).
    :param options: the vendor's inference flags.
    :param concurrency: requests in flight.
    :param encoding: the input's codec (see :func:`..files.check_encoding`); rows are sent as UTF-8.
    """

    def __init__(
        self,
        hook: PredictionOneHook,
        prediction_api: api.PredictionApi,
        options: api.InferenceOptions,
        *,
        concurrency: int,
        log: Any,
        encoding: str = files.UTF8,
    ) -> None:
        self.encoding = encoding
        self.hook = hook
        self.prediction_api = prediction_api
        self.options = options
        self.concurrency = concurrency
        self.log = log

    def run(self, source: files.DataSource, output: Any, reasons: Any | None) -> ScoreCounts:
        with files.open_for_writing(output) as out:
            if reasons is None:
                return _event_loop.run(self._score(source, _Sink(out, PREDICTIONS), None))
            with files.open_for_writing(reasons) as reasons_out:
                return _event_loop.run(self._score(source, _Sink(out, PREDICTIONS), _Sink(reasons_out, REASONS)))

    async def _score(self, source: files.DataSource, predictions: _Sink, reasons: _Sink | None) -> ScoreCounts:
        counts = ScoreCounts()
        started = last_report = time.monotonic()
        async with self.hook.async_client() as client:
            pending: deque[asyncio.Task[tuple[int, api.InferenceResult]]] = deque()
            slots = asyncio.Semaphore(self.concurrency)
            failed = False

            def finished(task: asyncio.Task[Any]) -> None:
                nonlocal failed
                slots.release()
                failed = failed or (not task.cancelled() and task.exception() is not None)

            try:
                for row_number, request_csv in self._requests(source):
                    await slots.acquire()
                    if failed:  # no new row after a failure; the rows before it are written below
                        break
                    counts.rows_in += 1
                    task = asyncio.create_task(self._score_row(client, row_number, request_csv))
                    task.add_done_callback(finished)
                    pending.append(task)
                    while pending and pending[0].done():
                        self._write(pending.popleft().result(), predictions, reasons, counts)
                    if len(pending) >= WINDOW * self.concurrency:
                        self._write(await pending.popleft(), predictions, reasons, counts)
                    if time.monotonic() - last_report >= PROGRESS_EVERY:
                        last_report = time.monotonic()
                        rate = counts.rows_scored / max(last_report - started, 1e-6)
                        self.log.info("Scored %d rows so far (%.0f rows/s)", counts.rows_scored, rate)
                while pending:
                    self._write(await pending.popleft(), predictions, reasons, counts)
            finally:
                for task in pending:
                    task.cancel()
        elapsed = max(time.monotonic() - started, 1e-6)
        self.log.info(
            "Scored %d of %d rows in %.1f s (%.0f rows/s)",
            counts.rows_scored,
            counts.rows_in,
            elapsed,
            counts.rows_scored / elapsed,
        )
        return counts

    def _requests(self, source: files.DataSource) -> Iterator[tuple[int, bytes]]:
        """``(row number, header + that row as UTF-8 CSV bytes)`` for every data row, streamed."""
        with source.open() as raw:
            text = io.TextIOWrapper(raw, encoding=self.encoding, newline="")
            reader = csv.reader(text)
            row_number = 0
            try:
                header_line = _csv_line(next(reader))
                for row_number, row in enumerate(reader, start=1):
                    if not any(cell.strip() for cell in row):
                        continue
                    yield row_number, (header_line + _csv_line(row)).encode()
            except UnicodeDecodeError:
                raise InvalidInputError(
                    f"{source.field}: {source} is not {self.encoding} text after row {row_number}; "
                    "scoring stopped. Check the operator's encoding= argument"
                ) from None

    async def _score_row(
        self, client: PredictionOneAsyncClient, row_number: int, request_csv: bytes
    ) -> tuple[int, api.InferenceResult]:
        try:
            return row_number, await client.infer(self.prediction_api, request_csv, self.options)
        except ApiError as exc:
            raise type(exc)(
                f"Row {row_number}: {exc}",
                endpoint=exc.endpoint,
                http_status=exc.http_status,
                code=exc.code,
                error=exc.error,
                vendor_message=exc.vendor_message,
            ) from None

    def _write(
        self,
        scored: tuple[int, api.InferenceResult],
        predictions: _Sink,
        reasons: _Sink | None,
        counts: ScoreCounts,
    ) -> None:
        row_number, result = scored
        if PREDICTIONS not in result.outputs:
            raise UnexpectedResponseError(
                f"Inference of row {row_number} returned no {PREDICTIONS}", endpoint="Inference"
            )
        counts.rows_scored += predictions.write(row_number, result.outputs[PREDICTIONS]) and 1
        counts.model_version = result.version
        if reasons is not None and REASONS in result.outputs:
            reasons.write(row_number, result.outputs[REASONS])
