"""Dynamic batching: concurrent requests to one app are answered by one ``predict`` call.

A ``MicroBatcher`` owns one app, a bounded waiting line and one worker thread. Its collector task
takes the oldest waiting request and waits until ``max_batch`` requests are there or the oldest
has waited ``max_wait_ms``, then runs ``app.predict`` on the batch in the worker thread (the event
loop keeps accepting requests meanwhile, so the next batch fills while this one runs) and hands
each request its own answer. Requests whose options differ are predicted in separate calls of the
same round, except for an app that ``predicts_mixed`` (``/v1/analyze``): it gets the whole round in one
``predict_mixed(images, options_per_image)`` call. A full line is refused at once with 429 ``overloaded``; requests whose client has gone
are dropped before they cost a prediction. ``close()`` stops taking requests and answers every one
already waiting, which is how a reload swaps apps without dropping any.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol, TypeVar, runtime_checkable

from PIL import Image

from tagsight.apps.base import App
from tagsight.fsio import ReasonError
from tagsight.serve.errors import ServeError

log = logging.getLogger(__name__)
T = TypeVar("T")

BatchObserver = Callable[[str, int, float], None]
"""Called with (app name, batch size, predict seconds) after every predict call."""


@dataclass
class _Request:
    image: Image.Image
    options: dict[str, Any]
    key: str
    future: asyncio.Future[Answer]
    enqueued: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Answer:
    """One request's answer and the size of the batch it was predicted in."""

    result: dict[str, Any]
    batch_size: int


class MicroBatcher:
    """Collect concurrent requests for ``app`` into batches of at most ``max_batch`` (1: no batching)."""

    def __init__(self, app: App, max_batch: int, max_wait_ms: float, max_queue: int,
                 observe: BatchObserver | None = None) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch and max_queue must be >= 1 and max_wait_ms >= 0, got "
                             f"{max_batch}, {max_queue}, {max_wait_ms}")
        self.app, self.max_batch, self.max_queue = app, max_batch, max_queue
        self.max_wait = max_wait_ms / 1000.0
        self._observe = observe
        self._options_check = _option_checker(app)
        self._waiting: deque[_Request] = deque()
        self._arrived: asyncio.Event | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"app-{app.name}")
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def depth(self) -> int:
        """Requests waiting for a batch (not counting the batch being predicted)."""
        return len(self._waiting)

    def start(self) -> None:
        """Start the collector on the running event loop."""
        self._arrived = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"batcher-{self.app.name}")

    def check_options(self, options: dict[str, Any]) -> None:
        """ServeError (``unknown_option``, ``invalid_option``) for options the app cannot take; nothing is queued."""
        self._options_check(options)

    async def submit(self, image: Image.Image, options: dict[str, Any] | None = None) -> Answer:
        """The app's answer for ``image``; raises ``ServeError`` (overloaded, shutting_down, invalid_option, ...)."""
        if self._closing or self._task is None:
            raise ServeError("shutting_down", f"app {self.app.name!r} is not accepting requests; retry")
        options = options or {}
        self._options_check(options)
        if len(self._waiting) >= self.max_queue:
            raise ServeError("overloaded", f"{len(self._waiting)} requests are waiting for {self.app.name!r} "
                             f"(max {self.max_queue}); retry later", headers={"Retry-After": "1"})
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Request(image, options, _options_key(options), future))
        self._arrival().set()
        return await future

    async def run_exclusive(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the app's worker thread, never at the same time as a ``predict`` (admin changes)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def close(self) -> None:
        """Refuse new requests, answer every waiting one, then stop the collector and the thread."""
        self._closing = True
        if self._arrived is not None:
            self._arrived.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    def _arrival(self) -> asyncio.Event:
        """The event a new request sets; it exists once ``start()`` has run."""
        if self._arrived is None:
            raise RuntimeError(f"the batcher of {self.app.name!r} is not started: call start() first")
        return self._arrived

    # ----------------------------------------------------------------------------- the collector

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            if batch is None:
                return
            try:
                await self._predict_round(batch)
            except Exception:  # never let one bad round kill the collector
                log.exception("batch of %d for %s failed outside predict", len(batch), self.app.name)
                _fail(batch, ServeError("internal_error", "the batch could not be answered (logged)"))

    async def _collect(self) -> list[_Request] | None:
        """The next batch, or None once closing with nothing left waiting."""
        while not self._waiting:
            if self._closing:
                return None
            self._arrival().clear()
            await self._arrival().wait()
        deadline = self._waiting[0].enqueued + self.max_wait
        while len(self._waiting) < self.max_batch and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._arrival().clear()
            try:
                await asyncio.wait_for(self._arrival().wait(), remaining)
            except (TimeoutError, asyncio.TimeoutError):
                break
        take = min(self.max_batch, len(self._waiting))
        return [self._waiting.popleft() for _ in range(take)]

    async def _predict_round(self, batch: list[_Request]) -> None:
        groups: dict[str, list[_Request]] = {}
        mixed = _mixed(self.app) is not None   # one call for the round, each request its options
        for req in batch:
            if not req.future.done():  # a cancelled request (client gone, timed out) costs nothing
                groups.setdefault("" if mixed else req.key, []).append(req)
        for group in groups.values():
            await self._predict_group(group)

    async def _predict_group(self, group: list[_Request]) -> None:
        images, options = [r.image for r in group], group[0].options
        start = time.perf_counter()
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self._call(group))
            _check_results(self.app.name, results, len(images))
        except Exception as exc:
            self._observed(len(group), start)
            await self._handle_failure(group, self._client_error(exc, options))
            return
        self._observed(len(group), start)
        for req, result in zip(group, results):
            if not req.future.done():
                req.future.set_result(Answer(result, len(group)))

    def _call(self, group: list[_Request]) -> Callable[[], Any]:
        images = [r.image for r in group]
        mixed = _mixed(self.app)
        if mixed is not None:
            return partial(mixed.predict_mixed, images, [r.options for r in group])
        return partial(self.app.predict, images, **group[0].options)

    async def _handle_failure(self, group: list[_Request], error: ServeError) -> None:
        """A bug (500) in a batch is retried request by request, so only the request that triggers it fails; so is
        any failure of a ``predicts_mixed`` batch, whose requests ask different things (one app's refusal of one
        request must not answer the others)."""
        mixed = _mixed(self.app) is not None
        if (error.status < 500 and not mixed) or len(group) == 1:
            _fail(group, error)
            return
        log.warning("%s failed on a batch of %d; predicting its requests one by one", self.app.name, len(group))
        for req in group:
            if not req.future.done():
                await self._predict_group([req])

    def _observed(self, size: int, start: float) -> None:
        if self._observe is not None:
            self._observe(self.app.name, size, time.perf_counter() - start)

    def _client_error(self, exc: Exception, options: dict[str, Any]) -> ServeError:
        """What a failed predict means for its requests: the app's refusal, a bad option, or a bug (500)."""
        if isinstance(exc, ServeError):
            return exc
        if isinstance(exc, ReasonError) and exc.reason in _OPTION_REASONS:
            return ServeError(_OPTION_REASONS[exc.reason], f"{self.app.name}: {exc}")
        if isinstance(exc, ReasonError):
            return ServeError("app_rejected", f"{self.app.name}: {exc.reason}: {exc}")
        if isinstance(exc, ValueError) and options:
            return ServeError("invalid_option", f"{self.app.name} rejected the options {options}: {exc}")
        log.error("%s.predict failed on a batch of requests", self.app.name, exc_info=exc)
        return ServeError("internal_error", f"{self.app.name} failed on this request ({type(exc).__name__}); logged")


@runtime_checkable
class MixedPredictor(Protocol):
    """An app answering a whole round in one call, each request with its own options (``MultiApp``)."""

    predicts_mixed: bool

    def predict_mixed(self, images: Sequence[Image.Image],
                      requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]: ...


def _mixed(app: App) -> MixedPredictor | None:
    """``app`` when it predicts mixed rounds (``predicts_mixed`` set and a ``predict_mixed``), else None."""
    return app if isinstance(app, MixedPredictor) and app.predicts_mixed else None


_OPTION_REASONS = {"unknown_option": "unknown_option", "bad_option": "invalid_option"}


def _app_checks(app: App, checker: Callable[[dict[str, Any]], Any], options: dict[str, Any]) -> None:
    try:
        checker(options)
    except ReasonError as exc:
        if exc.reason not in _OPTION_REASONS:
            raise ServeError("app_rejected", f"{app.name}: {exc.reason}: {exc}") from None
        raise ServeError(_OPTION_REASONS[exc.reason], str(exc)) from None


def _fail(requests: list[_Request], error: ServeError) -> None:
    for req in requests:
        if not req.future.done():
            req.future.set_exception(error)


def _check_results(name: str, results: Any, expected: int) -> None:
    if not isinstance(results, list) or len(results) != expected:
        got = len(results) if isinstance(results, list) else type(results).__name__
        raise RuntimeError(f"{name}.predict returned {got} answers for {expected} images")


def _options_key(options: dict[str, Any]) -> str:
    """Requests batch together only when their options are equal (canonical JSON)."""
    try:
        return json.dumps(options, sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(sorted(options.items()))


def _option_checker(app: App) -> Callable[[dict[str, Any]], None]:
    """Refuse, before a request is queued, options the app does not take (422 ``unknown_option``) and, for apps
    that check their options (``check_options``: FeatureApp), values they cannot use (422 ``invalid_option``).

    An app without ``check_options`` is checked against its declared ``options``, else predict's parameters.
    """
    declared = getattr(app, "options", None)
    checker = getattr(app, "check_options", None)
    if isinstance(declared, dict) and callable(checker):
        return partial(_app_checks, app, checker)
    params = list(inspect.signature(app.predict).parameters.values())[1:]
    if isinstance(declared, dict):   # apps that declare their options: exactly those
        allowed = set(declared)
    elif any(p.kind is p.VAR_KEYWORD for p in params):
        return lambda options: None
    else:
        allowed = {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}

    def check(options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ServeError("unknown_option", f"{app.name} takes no option {', '.join(unknown)} "
                             f"(its options: {', '.join(sorted(allowed)) or 'none'})")

    return check
