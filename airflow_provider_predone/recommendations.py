"""
AiTEMS recommendations out: every target of a file (or the popular items) looked up through
the recommendations lookup endpoint, concurrently, and written to CSV or JSON Lines in input
order.

The requests go through the batch-scoring engine (:class:`~.scoring.OrderedRequests`): a
lookup is a pure read, so a late one is hedged and a failed one retried without holding the
others; answers that overtake an awaited one wait in memory up to a bound, then on disk. The
targets are streamed from the file, so memory does not follow their number; the output goes
through a ``.part`` file that replaces the previous one only when whole.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Literal, get_args

from airflow_provider_predone import _event_loop, files
from airflow_provider_predone.exceptions import ApiError, InvalidInputError, UnexpectedResponseError
from airflow_provider_predone.protocol import aitems as api
from airflow_provider_predone.scoring import DEFAULT_INFERENCE_TIMEOUT, PROGRESS_EVERY, Hedging, OrderedRequests

if TYPE_CHECKING:
    from airflow_provider_predone.hooks.aitems import AitemsHook

OutputFormat = Literal["csv", "jsonl"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
#: ``targets="pop"``: no file; the popular items, one lookup of type ``pop``, written for target ``pop``.
POP = "pop"
#: Output file suffixes and the format each means, when ``output_format`` is not given.
SUFFIXES: dict[str, OutputFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
DEFAULT_LOOKUP_TIMEOUT = DEFAULT_INFERENCE_TIMEOUT
#: A target: its line in the file (0 for ``pop``) and its id (``None`` for ``pop``).
Target = tuple[int, str | None]


def output_format(location: Any, chosen: str | None) -> OutputFormat:
    """The output's format: ``chosen``, or the one its suffix names.

    :raises InvalidInputError: naming ``output_format`` or the output and the allowed values.
    """
    if chosen is not None:
        if chosen not in OUTPUT_FORMATS:
            raise InvalidInputError(f"output_format must be one of {list(OUTPUT_FORMATS)}, got {chosen!r}")
        return chosen  # type: ignore[return-value]  # checked just above
    name = str(getattr(location, "name", "") or location).lower()
    suffix = next((s for s in SUFFIXES if name.endswith(s)), None)
    if suffix is None:
        raise InvalidInputError(
            f"output_data: {location!s} ends in none of {list(SUFFIXES)}; name the format with "
            f"output_format= (one of {list(OUTPUT_FORMATS)})"
        )
    return SUFFIXES[suffix]


class TargetFile:
    """
    The targets of a file, streamed: one id per line, or the ``column`` of a CSV with a header.
    Blank lines (or cells) are skipped; each id is checked as it is read
    (:func:`~..protocol.aitems.target_id_value`), its error naming the line.

    :param source: the file (local or object storage).
    :param column: the CSV column holding the ids; ``None`` for one id per line.
    """

    def __init__(self, source: files.DataSource, column: str | None = None) -> None:
        self.source = source
        self.column = column

    def check(self) -> int:
        """Read the whole file once, before anything is sent: the number of targets (at least one)."""
        count = sum(1 for _ in self)
        if not count:
            raise InvalidInputError(f"{self.source.field}: {self.source} holds no target id")
        return count

    def __iter__(self) -> Generator[Target]:
        where = f"{self.source.field}: {self.source}"
        with self.source.open() as raw:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
            try:
                if self.column is None:
                    for number, line in enumerate(text, start=1):
                        target = line.strip()
                        if target:
                            yield number, api.target_id_value(target, f"{where} line {number}")
                    return
                reader = csv.reader(text)
                header = next(reader, [])
                if self.column not in header:
                    raise InvalidInputError(
                        f"target_column: {self.column!r} is not a column of {self.source} (columns: {header[:50]})"
                    )
                index = header.index(self.column)
                for row in reader:
                    target = row[index].strip() if index < len(row) else ""
                    if target:
                        yield reader.line_num, api.target_id_value(target, f"{where} line {reader.line_num}")
            except UnicodeDecodeError:
                raise InvalidInputError(f"{where} is not UTF-8 text") from None
            except csv.Error as exc:
                raise InvalidInputError(f"{where} is not a readable CSV ({exc})") from None


@dataclass
class LookupCounts:
    """What a run looked up and wrote."""

    targets: int = 0  #: targets whose recommendations were written
    rows: int = 0  #: recommendations written (CSV rows, or values over all JSON lines)
    empty: int = 0  #: targets the model answered no recommendation for (unknown to it)
    requests: int = 0  #: lookups sent, retries and hedges included
    hedges: int = 0


class _Sink:
    """One output file: CSV rows ``target_id,rank,item_id`` or JSON lines ``{"target", "values"}``."""

    def __init__(self, stream: IO[bytes], kind: OutputFormat, counts: LookupCounts) -> None:
        self._stream = stream
        self._kind = kind
        self._counts = counts
        self._field: str | None = None
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")

    def write(self, target: Target, answer: dict[str, Any]) -> None:
        number, target_id = target
        name = target_id if target_id is not None else POP
        field, values = answer["field"], answer["values"]
        if self._field is None:
            self._field = field
            if self._kind == "csv":
                self._stream.write(f"target_id,rank,{field.lower()}\n".encode())
        elif field != self._field:
            raise UnexpectedResponseError(
                f"Recommendations of target {name!r} (line {number}) are {field}s, those before were {self._field}s",
                endpoint="Recommendations lookup",
            )
        if self._kind == "csv":
            buffer = self._buffer
            buffer.seek(0)
            buffer.truncate()
            self._csv.writerows((name, rank, value) for rank, value in enumerate(values, start=1))
            self._stream.write(buffer.getvalue().encode())
        else:
            line = json.dumps({"target": name, "values": values}, ensure_ascii=False)
            self._stream.write(f"{line}\n".encode())
        counts = self._counts
        counts.targets += 1
        counts.rows += len(values)
        counts.empty += not values


class BatchLookup:
    """
    Looks up the recommendations of many targets of one service and writes them in input order.

    :param hook: resolves the connection (one async session for the whole run).
    :param service_id: the AiTEMS service.
    :param train_type: ``personalRecommend`` (targets are USER_IDs), ``relatedItem`` (ITEM_IDs)
        or ``pop`` (no targets).
    :param concurrency: lookups in flight, hedges included.
    :param timeout: seconds one lookup may take before it is retried.
    :param hedge: send a late lookup once more (see :class:`~..scoring.Hedging`).
    """

    def __init__(
        self,
        hook: AitemsHook,
        service_id: str,
        train_type: str,
        *,
        concurrency: int,
        log: Any,
        timeout: float = DEFAULT_LOOKUP_TIMEOUT,
        hedge: bool = True,
    ) -> None:
        self.hook = hook
        self.service_id = service_id
        self.train_type = train_type
        self.concurrency = concurrency
        self.log = log
        self.timeout = timeout
        self.hedge = hedge

    def run(self, targets: TargetFile | None, total: int, output: Any, kind: OutputFormat) -> LookupCounts:
        """Look up every target (``None``: the popular items) and write ``output`` whole, or leave it as it was."""
        with files.open_for_writing(output) as stream:
            return _event_loop.run(self._run(targets, total, stream, kind))

    async def _run(self, targets: TargetFile | None, total: int, stream: IO[bytes], kind: OutputFormat) -> LookupCounts:
        counts = LookupCounts()
        sink = _Sink(stream, kind, counts)
        started = last_report = time.monotonic()

        def write(target: Target, answer: dict[str, Any]) -> None:
            nonlocal last_report
            sink.write(target, answer)
            if time.monotonic() - last_report >= PROGRESS_EVERY:
                last_report = time.monotonic()
                rate = counts.targets / max(last_report - started, 1e-6)
                self.log.info("Looked up %d of %d targets so far (%.0f targets/s)", counts.targets, total, rate)

        # Lookups are tried once by the client: the engine retries, freeing the slot meanwhile.
        async with self.hook.async_client(retry=False) as client:

            async def fetch(target: Target) -> dict[str, Any]:
                return await client.call(api.lookup(self.service_id, self.train_type, target[1]))

            engine: OrderedRequests[Target, dict[str, Any]] = OrderedRequests(
                fetch,
                write,
                client.info.settings,
                concurrency=self.concurrency,
                timeout=self.timeout,
                hedging=Hedging() if self.hedge else None,
                failed=lambda target, exc: _naming_target(exc, target, targets),
                describe=lambda target: _describe(target, targets),
                log=self.log,
            )
            items = iter(targets) if targets is not None else _popular()
            try:
                with contextlib.closing(items):  # the file closes when the run ends early too
                    sent = await engine.run(items)
            finally:
                counts.requests, counts.hedges = engine.counts.requests, engine.counts.hedges
        elapsed = max(time.monotonic() - started, 1e-6)
        self.log.info(
            "Looked up %d targets in %.1f s (%.0f targets/s), %d recommendations, %d targets with none; "
            "%d requests: %d retries, %d timed out, %d hedges (%d answered first); %d answers waited on disk",
            counts.targets,
            elapsed,
            counts.targets / elapsed,
            counts.rows,
            counts.empty,
            sent.requests,
            sent.retries,
            sent.timeouts,
            sent.hedges,
            sent.hedges_first,
            sent.spilled,
        )
        return counts


def _popular() -> Generator[Target]:
    yield 0, None


def _describe(target: Target, targets: TargetFile | None) -> str:
    number, target_id = target
    if target_id is None:
        return "Popular items (pop)"
    return f"Target {target_id!r} (line {number} of {targets.source if targets else 'targets'})"


def _naming_target(exc: ApiError, target: Target, targets: TargetFile | None) -> ApiError:
    """The same error, its message starting with the target (and input line) it concerns."""
    return type(exc)(
        f"{_describe(target, targets)}: {exc}",
        endpoint=exc.endpoint,
        http_status=exc.http_status,
        code=exc.code,
        error=exc.error,
        vendor_message=exc.vendor_message,
    )
