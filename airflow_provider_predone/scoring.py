"""
Batch scoring through a prediction API: a CSV of any size, one row per request, a bounded
number of requests in flight, results written in input order.

``concurrency`` workers share one reader of the input: each sends a row, waits for its
answer and takes the next row at once, so a slot never waits for a slower row's answer
(answers overtake each other under load). Memory stays constant: rows are read as they are
sent, and answers wait for their turn to be written in a window of ``WINDOW * concurrency``
rows at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import time
from collections.abc import Callable, Generator, Iterator
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


class _CsvLines:
    """CSV rows to text with one reused writer (a writer per row cost more than the row)."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    def __call__(self, rows: list[list[str]]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerows(rows)
        return self._buffer.getvalue()


class _Sink:
    """One output CSV: the header of the first answer, then ``row_number`` + each answer's rows."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._stream = stream
        self._name = name
        self._header: list[str] | None = None
        self._lines = _CsvLines()

    def write(self, row_number: int, data: bytes) -> int:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        if not rows:
            raise UnexpectedResponseError(f"Inference of row {row_number}: {self._name} is empty", endpoint="Inference")
        header, rows = rows[0], rows[1:]
        if self._header is None:
            self._header = header
            self._stream.write(self._lines([[ROW_NUMBER, *header]]).encode())
        elif header != self._header:
            raise UnexpectedResponseError(
                f"Inference of row {row_number}: {self._name} columns changed from {self._header} to {header}",
                endpoint="Inference",
            )
        number = str(row_number)
        self._stream.write(self._lines([[number, *row] for row in rows]).encode())
        return len(rows)


class _InOrder:
    """
    Answers in as they come, written in input order (``seq`` counts the rows sent, from 0).

    A row may be sent only ``window`` rows ahead of the oldest unwritten one, which bounds
    the answers held here.
    """

    def __init__(self, window: int, write: Callable[[Any], None]) -> None:
        self._window = window
        self._write = write
        self._held: dict[int, Any] = {}
        self._next = 0  # the oldest unwritten row
        self._room = asyncio.Event()

    async def admit(self, seq: int) -> None:
        """Wait until row ``seq`` may be sent."""
        while seq >= self._next + self._window:
            self._room.clear()
            await self._room.wait()

    def put(self, seq: int, answer: Any) -> None:
        self._held[seq] = answer
        if seq != self._next:
            return
        while self._next in self._held:
            self._write(self._held.pop(self._next))
            self._next += 1
        self._room.set()


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
        written = _InOrder(WINDOW * self.concurrency, lambda scored: self._write(scored, predictions, reasons, counts))

        async def work(client: PredictionOneAsyncClient, rows: Iterator[tuple[int, tuple[int, bytes]]]) -> None:
            nonlocal last_report
            for seq, (row_number, request_csv) in rows:
                await written.admit(seq)
                counts.rows_in += 1
                try:
                    result = await client.infer(self.prediction_api, request_csv, self.options)
                except ApiError as exc:
                    raise _naming_row(exc, row_number) from None
                written.put(seq, (row_number, result))
                if time.monotonic() - last_report >= PROGRESS_EVERY:
                    last_report = time.monotonic()
                    rate = counts.rows_scored / max(last_report - started, 1e-6)
                    self.log.info("Scored %d rows so far (%.0f rows/s)", counts.rows_scored, rate)

        async with self.hook.async_client() as client:
            with contextlib.closing(self._requests(source)) as requests:
                rows = enumerate(requests)  # one reader shared by the workers, in input order
                workers = [asyncio.create_task(work(client, rows)) for _ in range(self.concurrency)]
                try:
                    await asyncio.gather(*workers)
                finally:  # the first error ends the run: no row is sent after it
                    for worker in workers:
                        worker.cancel()
                    await asyncio.gather(*workers, return_exceptions=True)
        elapsed = max(time.monotonic() - started, 1e-6)
        self.log.info(
            "Scored %d of %d rows in %.1f s (%.0f rows/s)",
            counts.rows_scored,
            counts.rows_in,
            elapsed,
            counts.rows_scored / elapsed,
        )
        return counts

    def _requests(self, source: files.DataSource) -> Generator[tuple[int, bytes]]:
        """``(row number, header + that row as UTF-8 CSV bytes)`` for every data row, streamed."""
        with source.open() as raw:
            text = io.TextIOWrapper(raw, encoding=self.encoding, newline="")
            reader = csv.reader(text)
            lines = _CsvLines()
            row_number = 0
            try:
                header_line = lines([next(reader)])
                for row_number, row in enumerate(reader, start=1):
                    if not any(cell.strip() for cell in row):
                        continue
                    yield row_number, (header_line + lines([row])).encode()
            except UnicodeDecodeError:
                raise InvalidInputError(
                    f"{source.field}: {source} is not {self.encoding} text after row {row_number}; "
                    "scoring stopped. Check the operator's encoding= argument"
                ) from None

    @staticmethod
    def _write(
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


def _naming_row(exc: ApiError, row_number: int) -> ApiError:
    """The same error, its message starting with the row it concerns."""
    return type(exc)(
        f"Row {row_number}: {exc}",
        endpoint=exc.endpoint,
        http_status=exc.http_status,
        code=exc.code,
        error=exc.error,
        vendor_message=exc.vendor_message,
    )
