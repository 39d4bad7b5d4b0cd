"""
Batch scoring through a prediction API: a CSV of any size, one row per request, a bounded
number of requests in flight, results written in input order.

The requests go through :class:`OrderedRequests`, an engine that knows nothing of Prediction
One: an async function from an item to its answer, and a writer that takes the answers in the
items' order. It keeps its pace when the service stumbles (docs/guides/prediction-api.md):

* a slow or retried item holds one request slot while its request is out, none while it waits
  to be retried; the answers that overtake it wait for their turn, in memory up to ``WINDOW``
  per slot, then in a temporary file, so the memory held does not follow the file's size;
* retries wait the connection's doubling backoff only while the service fails most requests;
  while it answers most, an item waits at most the first step (or the server's Retry-After);
* an attempt gets ``timeout`` seconds, then counts as a transient failure and is retried;
* a request later than the recent latencies say it should be is sent once more (a hedge),
  the first answer wins; hedges are capped at a share of the requests (a token bucket);
* the reference cycles a failed request leaves behind (its exception's traceback, the retry
  state) are collected as the run goes, not when the interpreter's collector gets to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import gc
import io
import pickle
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Generic, TypeVar, cast

from airflow_provider_predone import _event_loop, files
from airflow_provider_predone.exceptions import (
    ApiError,
    InvalidInputError,
    TransientApiError,
    UnexpectedResponseError,
)
from airflow_provider_predone.hooks._http import describe_retry, retry_policy
from airflow_provider_predone.protocol import predone as api

if TYPE_CHECKING:
    from airflow_provider_predone.hooks.connection import HttpSettings
    from airflow_provider_predone.hooks.predone import PredictionOneHook

T = TypeVar("T")
R = TypeVar("R")

PREDICTIONS = "prediction_valid.csv"
REASONS = "prediction_analysis.csv"
ROW_NUMBER = "row_number"
PROGRESS_EVERY = 10.0  # seconds between progress lines
WINDOW = 4  # answers held in memory per slot while an older row is awaited; more go to a temp file
BACKLOG = 16  # rows started and not yet answered, per slot: those waiting to be retried included
DEFAULT_INFERENCE_TIMEOUT = 10.0  # seconds per inference attempt
HEDGE_SHARE = 0.05  # hedges per request, at most (the token bucket's refill)
HEDGE_BURST = 5.0  # hedges that may go out at once (the bucket's size, full at the start)
HEDGES_PER_ATTEMPT = 2  # a hedge late in its turn is hedged once more
HEDGE_FLOOR = 0.04  # seconds: no hedge sooner, however fast the service answers
HEDGE_QUANTILE = 0.99  # a request is late past this quantile of the recent latencies
HEDGE_FIRST_DELAY = 1.0  # seconds, until LATENCY_MIN_SAMPLES answers have been timed
OUTCOMES = 100  # recent requests whose outcome tells whether the service is up
OUTCOMES_MIN = 20
LATENCY_SAMPLES = 512  # recent latencies kept
LATENCY_MIN_SAMPLES = 20
LATENCY_REFRESH = 32  # answers between two computations of the quantile
COLLECT_EVERY = 128  # items between two collections of the run's reference cycles

_runs = 0  # runs in progress in this process (see _run_garbage)
_froze = False  # whether those runs froze the objects older than them


@contextlib.contextmanager
def _run_garbage() -> Iterator[Callable[[], None]]:
    """
    For one run: a function that collects the reference cycles the run has left, cheaply.

    A failed request leaves cycles (its exception's traceback and frames, tenacity's retry
    state) that outlive the young collections while its row waits to be retried. Python frees
    them only in a full collection, which waits until they are a quarter of the process's
    long-lived objects (about 200,000 in a task process) and then walks all of those: under
    faults the peak RSS grew with the run (docs/benchmarks.md, P4). So the objects older than
    the run are frozen (:func:`gc.freeze`) while it lasts, and the run's own collections walk
    only its objects. Nothing is frozen when the collector is off or something else froze some.
    """
    global _runs, _froze
    if _runs == 0 and gc.isenabled() and gc.get_freeze_count() == 0:
        gc.freeze()
        _froze = True
    _runs += 1

    def collect() -> None:
        if _froze and gc.isenabled():
            gc.collect()

    try:
        yield collect
    finally:
        _runs -= 1
        if _runs == 0 and _froze:
            _froze = False
            gc.unfreeze()  # the frozen objects join the oldest generation, as before the run


class Hedging:
    """
    When a request is late enough to be sent once more, and whether one more may be sent.

    A request is late past the ``quantile`` of the last latencies (never sooner than ``floor``).
    Each request adds ``share`` of a token to a bucket of ``burst`` tokens; a hedge takes one,
    so hedges stay near ``share`` of the requests when the whole service is slow.

    :param share: hedges per request, at most (over a run).
    :param floor: seconds before which no request is late.
    :param quantile: which quantile of the recent latencies makes a request late.
    :param burst: hedges that may be sent at once; the bucket starts full.
    """

    def __init__(
        self,
        share: float = HEDGE_SHARE,
        floor: float = HEDGE_FLOOR,
        quantile: float = HEDGE_QUANTILE,
        burst: float = HEDGE_BURST,
    ) -> None:
        self.share, self.floor, self.quantile, self.burst = share, floor, quantile, burst
        self._tokens = burst
        self._latencies: deque[float] = deque(maxlen=LATENCY_SAMPLES)
        self._delay = max(floor, HEDGE_FIRST_DELAY)
        self._since = 0
        self.late_after: float | None = None  #: the quantile of the recent latencies, once known

    @property
    def delay(self) -> float:
        """Seconds after which a request is late."""
        return self._delay

    def record(self, seconds: float) -> None:
        """The latency of a request that was answered."""
        self._latencies.append(seconds)
        self._since += 1
        count = len(self._latencies)
        if count >= LATENCY_MIN_SAMPLES and (self._since >= LATENCY_REFRESH or count == LATENCY_MIN_SAMPLES):
            ordered = sorted(self._latencies)
            self.late_after = ordered[min(count - 1, int(self.quantile * count))]
            self._delay = max(self.floor, self.late_after)
            self._since = 0

    def sent(self) -> None:
        """A request (not a hedge) went out: it earns a share of a hedge."""
        self._tokens = min(self.burst, self._tokens + self.share)

    def take(self) -> bool:
        """Whether a hedge may be sent now (it is then counted)."""
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class OrderedWriter(Generic[R]):
    """
    Answers in as they come, written in input order (``seq`` counts the items from 0).

    An answer that arrives ahead of an older one waits for it: in memory up to ``in_memory``
    answers, then pickled to a temporary file of this process, so the memory held does not
    grow however long an item is awaited.

    :param write: writes one answer; called in ``seq`` order.
    :param in_memory: answers held in memory, at most.
    """

    def __init__(self, write: Callable[[R], None], in_memory: int) -> None:
        self._write = write
        self._in_memory = in_memory
        self._held: dict[int, R] = {}
        self._spilled: dict[int, tuple[int, int]] = {}  # seq -> (offset, size) in the spill file
        self._spill: IO[bytes] | None = None
        self._end = 0
        self._next = 0  # the oldest unwritten item
        self.spilled = 0  # answers that went through the file, in all

    def put(self, seq: int, answer: R) -> None:
        if seq != self._next:
            if len(self._held) < self._in_memory:
                self._held[seq] = answer
            else:
                self._save(seq, answer)
            return
        self._write(answer)
        self._next += 1
        while True:
            if (held := self._held.pop(self._next, None)) is not None:
                self._write(held)
            elif self._next in self._spilled:
                self._write(self._load(self._next))
            else:
                break
            self._next += 1
        if self._spill is not None and not self._spilled and self._end:
            self._spill.seek(0)
            self._spill.truncate()
            self._end = 0

    def _save(self, seq: int, answer: R) -> None:
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(prefix="predone-scoring-")  # noqa: SIM115 - closed by close()
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        self._spill.seek(self._end)
        self._spill.write(data)
        self._spilled[seq] = (self._end, len(data))
        self._end += len(data)
        self.spilled += 1

    def _load(self, seq: int) -> R:
        assert self._spill is not None
        offset, size = self._spilled.pop(seq)
        self._spill.seek(offset)
        answer: R = pickle.loads(self._spill.read(size))  # noqa: S301 - written by this process, just now
        return answer

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None


@dataclass
class RequestCounts:
    """What :class:`OrderedRequests` sent: ``requests`` counts every attempt, hedges included."""

    items: int = 0
    requests: int = 0
    retries: int = 0
    timeouts: int = 0
    hedges: int = 0
    hedges_first: int = 0  # hedges whose answer came first
    spilled: int = 0


class OrderedRequests(Generic[T, R]):
    """
    One request per item, ``concurrency`` in flight, answers written in the items' order.

    The engine of batch scoring, for any pure read (sending an item twice must be harmless:
    hedges do). It retries transient failures itself, with the connection's retry policy, so an
    item waiting to be retried holds no request slot; a run ends at the first item that fails
    for good.

    :param fetch: one attempt at an item's answer, without retries of its own.
    :param write: takes ``(item, answer)`` in the items' order.
    :param settings: the connection's settings; its retry policy is used.
    :param concurrency: requests in flight at most, hedges included.
    :param timeout: seconds an attempt may take; then it is a transient failure.
    :param hedging: when to send a late request once more; ``None``: never.
    :param failed: the error to raise for an item that failed for good (one naming it).
    :param describe: the item, in retry log lines.
    :param log: where retries are logged.
    """

    def __init__(
        self,
        fetch: Callable[[T], Awaitable[R]],
        write: Callable[[T, R], None],
        settings: HttpSettings,
        *,
        concurrency: int,
        timeout: float,
        hedging: Hedging | None,
        failed: Callable[[T, ApiError], ApiError],
        describe: Callable[[T], str],
        log: Any,
    ) -> None:
        self._fetch = fetch
        self._write = write
        self.settings = settings
        self.concurrency = concurrency
        self.timeout = timeout
        self.hedging = hedging
        self._failed = failed
        self._describe = describe
        self.log = log
        self.counts = RequestCounts()
        self._slots = asyncio.Semaphore(concurrency)
        self._outcomes: deque[bool] = deque(maxlen=OUTCOMES)  # recent requests: answered or not

    async def run(self, items: Iterable[T]) -> RequestCounts:
        """Send every item's request and write the answers; raises the first failure for good."""
        writer: OrderedWriter[tuple[T, R]] = OrderedWriter(lambda pair: self._write(*pair), WINDOW * self.concurrency)
        backlog = asyncio.Semaphore(BACKLOG * self.concurrency)  # items started and not yet answered
        numbered = enumerate(items)  # one reader shared by the workers, in input order

        async def retry(seq: int, item: T, failure: ApiError) -> None:
            try:
                answer = await self._retried(item, failure)
            finally:
                backlog.release()
            writer.put(seq, (item, answer))

        async def work(group: asyncio.TaskGroup) -> None:
            # A worker sends its next item as soon as its answer arrives: no hop through the
            # event loop between them. An item that failed goes on in a task of its own.
            for seq, item in numbered:
                await backlog.acquire()
                self.counts.items += 1
                if seq % COLLECT_EVERY == COLLECT_EVERY - 1:
                    collect()
                async with self._slots:
                    try:
                        answer = await self._attempt(item)
                    except ApiError as exc:
                        if not exc.transient:
                            raise self._failed(item, exc) from None
                        group.create_task(retry(seq, item, exc))
                        continue
                backlog.release()
                writer.put(seq, (item, answer))

        try:
            with _run_garbage() as collect:
                async with asyncio.TaskGroup() as group:
                    for _ in range(self.concurrency):
                        group.create_task(work(group))
        except BaseExceptionGroup as errors:  # the first failure ended the run: no item is sent after it
            raise errors.exceptions[0] from None
        finally:
            self.counts.spilled = writer.spilled
            writer.close()
        return self.counts

    async def _retried(self, item: T, first: ApiError | None) -> R:
        """An item's answer after its first attempt failed with ``first``, retried by the policy."""
        # The first attempt went out in a worker's slot, outside tenacity (a failed row must leave
        # its slot at once); its failure is replayed as tenacity's first, so the waits and the
        # stop follow the one policy (hooks/_http.RetryPolicy) as every other request's do.
        try:
            async for attempt in self._retrying(item):
                with attempt:
                    if first is not None:
                        failure, first = first, None
                        raise failure
                    self.counts.retries += 1
                    async with self._slots:  # none is held while the item waits
                        return await self._attempt(item)
        except ApiError as exc:
            raise self._failed(item, exc) from None
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _retrying(self, item: T) -> Any:
        import tenacity

        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            self.log.warning("%s: %s", self._describe(item), describe_retry(retry_state))

        policy = retry_policy(self.settings, before_sleep)
        doubling = policy["wait"]
        first_step = tenacity.wait_random(0, self.settings.retry_wait)

        def wait(retry_state: tenacity.RetryCallState) -> float:
            # Waits double so that a service in trouble is not pressed; while it answers most
            # requests, a row's failures are its own bad luck, and a doubling wait only makes
            # the run's last rows late (the run ends when its last row lands).
            if not self._service_up():
                return float(doubling(retry_state))
            outcome = retry_state.outcome
            retry_after = getattr(outcome.exception() if outcome else None, "retry_after", None) or 0.0
            return min(max(float(retry_after), first_step(retry_state)), self.settings.retry_max_wait)

        return tenacity.AsyncRetrying(**{**policy, "wait": wait})

    def _service_up(self) -> bool:
        """Whether most of the recent requests were answered."""
        outcomes = self._outcomes
        return len(outcomes) >= OUTCOMES_MIN and sum(outcomes) * 2 > len(outcomes)

    async def _attempt(self, item: T) -> R:
        """
        One attempt, in a slot the caller holds: the request, and a hedge if it is late (and
        another if that one is late too); the first answer wins, the others are cancelled. It
        fails when the newest request fails, or at ``timeout``.
        """
        hedging = self.hedging
        if hedging is None:
            try:
                async with asyncio.timeout(self.timeout):
                    return await self._timed(item)
            except TimeoutError:
                raise self._timed_out() from None
        loop = asyncio.get_running_loop()
        race: _Race[R] = _Race()
        hedging.sent()
        race.timer = loop.call_later(hedging.delay, self._hedge, item, race)
        try:
            async with asyncio.timeout(self.timeout) as deadline:
                race.deadline = deadline
                try:
                    return await self._timed(item)  # awaited here, not in a task: the common case
                except ApiError:
                    if not race.won and race.error is None and all(hedge.done() for hedge in race.hedges):
                        raise
                if not race.won and race.error is None:
                    race.answer = loop.create_future()  # a hedge is out, not late yet: it decides
                    await race.answer
        except TimeoutError:  # the deadline, or a hedge that ended the wait for the first request
            if not race.won and race.error is None:
                raise self._timed_out() from None
        finally:
            race.over = True
            if race.timer is not None:
                race.timer.cancel()
            for hedge in race.hedges:
                hedge.cancel()
        if race.won:
            return cast(R, race.result)
        assert race.error is not None
        raise race.error

    def _hedge(self, item: T, race: _Race[R]) -> None:
        """The timer of a late request: send the item once more, if the bucket allows."""
        hedging = self.hedging
        if race.over or hedging is None:
            return
        loop = asyncio.get_running_loop()
        if not hedging.take():  # none left for now: ask again when one may have come
            race.timer = loop.call_later(hedging.delay, self._hedge, item, race)
            return
        self.counts.hedges += 1
        task = loop.create_task(self._hedged(item))
        race.hedges.append(task)
        task.add_done_callback(functools.partial(self._settle, race))
        if len(race.hedges) < HEDGES_PER_ATTEMPT:  # the hedge may be held too (as often as the first)
            race.timer = loop.call_later(hedging.delay, self._hedge, item, race)

    def _settle(self, race: _Race[R], task: asyncio.Task[R]) -> None:
        """A hedge ended: its answer wins; its failure, if it was the newest request, fails the attempt."""
        if race.over or race.won or task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            race.won, race.result = True, task.result()
            self.counts.hedges_first += 1
        elif task is race.hedges[-1] and race.error is None:
            race.error = exc  # the requests before it are late already: retry after the backoff
        else:
            return  # an older one failed: the newer one, not late yet, may answer
        if race.answer is not None:
            if not race.answer.done():
                race.answer.set_result(None)  # the waiter reads the outcome from race
        elif race.deadline is not None:
            race.deadline.reschedule(asyncio.get_running_loop().time())  # stops awaiting the first

    async def _hedged(self, item: T) -> R:
        """The same request once more, in a slot of its own."""
        async with self._slots:
            return await self._timed(item)

    async def _timed(self, item: T) -> R:
        self.counts.requests += 1
        started = time.monotonic()
        try:
            result = await self._fetch(item)
        except ApiError as exc:
            if exc.transient:
                self._outcomes.append(False)
            raise
        self._outcomes.append(True)
        if self.hedging is not None:
            self.hedging.record(time.monotonic() - started)
        return result

    def _timed_out(self) -> TransientApiError:
        self.counts.timeouts += 1
        self._outcomes.append(False)
        return TransientApiError(f"no answer within {self.timeout:g} s (the attempt's timeout)")


class _Race(Generic[R]):
    """One attempt's hedges and how they ended (see :meth:`OrderedRequests._attempt`)."""

    __slots__ = ("answer", "deadline", "error", "hedges", "over", "result", "timer", "won")

    def __init__(self) -> None:
        self.hedges: list[asyncio.Task[R]] = []
        self.timer: asyncio.TimerHandle | None = None
        self.deadline: asyncio.Timeout | None = None
        self.answer: asyncio.Future[None] | None = None  # awaited once the first request failed
        self.won = False
        self.result: R | None = None
        self.error: BaseException | None = None
        self.over = False


@dataclass
class ScoreCounts:
    rows_in: int = 0
    rows_scored: int = 0
    model_version: int | None = None
    requests: int = 0  # inference requests, retries and hedges included
    hedges: int = 0


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


class BatchScorer:
    """
    Scores a CSV with one prediction API.

    :param hook: resolves the connection (one async session for the whole run).
    :param prediction_api: the API to call (its URL and inference key).
    :param options: the vendor's inference flags.
    :param concurrency: requests in flight.
    :param encoding: the input's codec (see :func:`..files.check_encoding`); rows are sent as UTF-8.
    :param inference_timeout: seconds one inference attempt may take before it is retried.
    :param hedge: send a late row's request once more (see :class:`Hedging`).
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
        inference_timeout: float = DEFAULT_INFERENCE_TIMEOUT,
        hedge: bool = True,
    ) -> None:
        self.encoding = encoding
        self.hook = hook
        self.prediction_api = prediction_api
        self.options = options
        self.concurrency = concurrency
        self.log = log
        self.inference_timeout = inference_timeout
        self.hedge = hedge

    def run(self, source: files.DataSource, output: Any, reasons: Any | None) -> ScoreCounts:
        with files.open_for_writing(output) as out:
            if reasons is None:
                return _event_loop.run(self._score(source, _Sink(out, PREDICTIONS), None))
            with files.open_for_writing(reasons) as reasons_out:
                return _event_loop.run(self._score(source, _Sink(out, PREDICTIONS), _Sink(reasons_out, REASONS)))

    async def _score(self, source: files.DataSource, predictions: _Sink, reasons: _Sink | None) -> ScoreCounts:
        counts = ScoreCounts()
        started = last_report = time.monotonic()

        def write(row: tuple[int, bytes], result: api.InferenceResult) -> None:
            nonlocal last_report
            self._write(row[0], result, predictions, reasons, counts)
            if time.monotonic() - last_report >= PROGRESS_EVERY:
                last_report = time.monotonic()
                rate = counts.rows_scored / max(last_report - started, 1e-6)
                self.log.info("Scored %d rows so far (%.0f rows/s)", counts.rows_scored, rate)

        # Requests are tried once by the client: the engine retries, freeing the slot meanwhile.
        async with self.hook.async_client(retry=False) as client:

            async def fetch(row: tuple[int, bytes]) -> api.InferenceResult:
                return await client.infer(self.prediction_api, row[1], self.options)

            engine: OrderedRequests[tuple[int, bytes], api.InferenceResult] = OrderedRequests(
                fetch,
                write,
                client.info.settings,
                concurrency=self.concurrency,
                timeout=self.inference_timeout,
                hedging=Hedging() if self.hedge else None,
                failed=lambda row, exc: _naming_row(exc, row[0]),
                describe=lambda row: f"Row {row[0]}",
                log=self.log,
            )
            try:
                with contextlib.closing(self._requests(source)) as rows:  # the input closes early too
                    sent = await engine.run(rows)
            finally:
                counts.rows_in = engine.counts.items
                counts.requests, counts.hedges = engine.counts.requests, engine.counts.hedges
        elapsed = max(time.monotonic() - started, 1e-6)
        late_after = engine.hedging.late_after if engine.hedging is not None else None
        self.log.info(
            "Scored %d of %d rows in %.1f s (%.0f rows/s); %d requests: %d retries, %d timed out, "
            "%d hedges (%d answered first); answers' p%.0f %s; %d answers waited on disk for an older row",
            counts.rows_scored,
            counts.rows_in,
            elapsed,
            counts.rows_scored / elapsed,
            sent.requests,
            sent.retries,
            sent.timeouts,
            sent.hedges,
            sent.hedges_first,
            HEDGE_QUANTILE * 100,
            "not measured" if late_after is None else f"{late_after:.3f} s",
            sent.spilled,
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
        row_number: int,
        result: api.InferenceResult,
        predictions: _Sink,
        reasons: _Sink | None,
        counts: ScoreCounts,
    ) -> None:
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
