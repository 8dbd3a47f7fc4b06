"""Engines: interchangeable executors of a stage's per-block function (``../shared/docs/design.md``, Scale plan).

A data stage cuts its work into blocks and hands one function and the blocks' arguments to an
``Engine``; the engine runs ``fn(*common, *args)`` for each block somewhere and yields
``(block_index, result)`` as blocks finish. The stage's driver alone writes outputs, in block
order, so what a stage writes does not depend on the engine nor on how many workers it had.

- ``local``: a process pool on this machine (in-process with one worker). Workers share the
  driver's disk, so a block may write its own result file (``remote`` is False).
- ``ray``: Ray tasks, on a local Ray started for the run or on a cluster (``address``). A task
  whose worker process dies is retried by Ray (``max_retries``); blocks return their results to
  the driver through Ray's object store (``remote`` is True: a worker may be on another machine).

Engines are picked by name from ``ENGINES`` (``create_engine``); both are context managers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Protocol, runtime_checkable

from tagsight.registry import Registry

log = logging.getLogger(__name__)


@runtime_checkable
class Engine(Protocol):
    """Runs one function over blocks; see the module doc."""

    name: str
    remote: bool  # True when workers may not share the driver's disk nor its process

    @property
    def workers(self) -> int:
        """How many blocks run at once."""

    def start(self) -> None:
        """Get the workers ready now (the local engine forks its processes; callers do this before starting
        threads of their own)."""

    def map(self, fn: Callable[..., Any], blocks: Iterable[tuple[Any, ...]], common: tuple[Any, ...] = ()) -> Iterator[tuple[int, Any]]:
        """``fn(*common, *args)`` for each ``args`` of ``blocks`` (read lazily: at most a few blocks ahead of
        the workers), yielding ``(index, result)`` in completion order. ``common`` is sent to workers once."""

    def close(self) -> None:
        """Release workers (and a Ray started for this engine)."""

    def __enter__(self) -> "Engine": ...

    def __exit__(self, *exc: object) -> None: ...


ENGINES: Registry[Engine] = Registry("engine")


class EngineError(RuntimeError):
    """An engine that cannot start: its package missing, or a cluster that cannot be joined."""


@dataclass(frozen=True)
class EngineConfig:
    """Which engine and where. Validated at construction."""

    name: str = "local"
    workers: int = 0               # 0: one per core (local), every CPU of the cluster (ray)
    address: str | None = None     # ray: a cluster's address ('auto', 'ray://host:10001', 'host:6379'); None starts one
    max_retries: int = 3           # ray: re-runs of a block whose worker died
    start_method: str = "fork"     # local: how workers start; "spawn" for blocks that run torch (a forked child
    #                                of a process whose OpenMP threads ran can hang)

    def __post_init__(self) -> None:
        ENGINES.get(self.name)  # an unknown name fails here, with the known ones
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise ValueError(f"workers must be an integer >= 0 (0 = all cores), got {self.workers!r}")
        if self.address is not None and self.name != "ray":
            raise ValueError(f"an engine address is for the ray engine, not {self.name!r}")
        if self.start_method not in ("fork", "spawn", "forkserver"):
            raise ValueError(f"start_method must be fork, spawn or forkserver, got {self.start_method!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")


def create_engine(cfg: EngineConfig | None = None) -> Engine:
    """The engine ``cfg`` names, ready to ``map``."""
    cfg = cfg or EngineConfig()
    return ENGINES.create(cfg.name, cfg)


@ENGINES.register("local")
class LocalEngine:
    """A process pool of ``workers`` processes (started when first needed, ``fork`` by default); one worker runs
    in-process. A worker that dies stops the run (rerun it: finished blocks are kept by the stage's cache)."""

    name = "local"
    remote = False

    def __init__(self, cfg: EngineConfig | None = None) -> None:
        self.cfg = cfg or EngineConfig()
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        return self.cfg.workers or os.cpu_count() or 1

    def start(self) -> None:
        """Start the workers now (before the caller starts threads: a forked child gets none of them)."""
        if self.workers > 1 and self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             mp_context=multiprocessing.get_context(self.cfg.start_method))
            self._pool.submit(int).result()

    def map(self, fn: Callable[..., Any], blocks: Iterable[tuple[Any, ...]], common: tuple[Any, ...] = ()) -> Iterator[tuple[int, Any]]:
        if self.workers == 1:
            for i, args in enumerate(blocks):
                yield i, fn(*common, *args)
            return
        self.start()
        assert self._pool is not None
        pending: dict[Future[Any], int] = {}
        todo = enumerate(blocks)
        for i, args in todo:
            pending[self._pool.submit(fn, *common, *args)] = i
            while len(pending) > self.workers:  # a bounded window: blocks are read as workers free up
                yield from _take(pending, wait(pending, return_when=FIRST_COMPLETED).done)
        while pending:
            yield from _take(pending, wait(pending, return_when=FIRST_COMPLETED).done)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "LocalEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _take(pending: dict[Future[Any], int], done: Iterable[Future[Any]]) -> Iterator[tuple[int, Any]]:
    for future in sorted(done, key=pending.__getitem__):
        yield pending.pop(future), future.result()


def _call(fn: Callable[..., Any], *args: Any) -> Any:
    """A Ray task running any callable (``ray.remote`` takes only plain functions, not partials)."""
    return fn(*args)


@ENGINES.register("ray")
class RayEngine:
    """Ray tasks, one per block, at most ``2 x workers`` in flight; see the module doc.

    Without ``address`` a local Ray is started with ``workers`` CPUs (all cores for 0) and shut down
    on ``close``; a Ray already initialised in this process (a cluster connection made by the
    caller) is used as it is and left running.
    """

    name = "ray"
    remote = True

    def __init__(self, cfg: EngineConfig | None = None) -> None:
        self.cfg = cfg or EngineConfig(name="ray")
        try:
            import ray
        except ImportError:  # pragma: no cover - ray is in the "ray" extra
            raise EngineError("the ray engine needs Ray: pip install 'tagsight[ray]'") from None
        self._ray, self._owned = ray, False
        if not ray.is_initialized():
            cpus = None if self.cfg.address else (self.cfg.workers or os.cpu_count() or 1)
            try:  # "local" starts a Ray of our own even when a cluster from `ray start` runs on this machine
                ray.init(address=self.cfg.address or "local", num_cpus=cpus, include_dashboard=False,
                         logging_level=logging.WARNING, configure_logging=False)
            except (ConnectionError, ValueError) as exc:
                raise EngineError(f"cannot join the Ray cluster at {self.cfg.address}: {exc}") from None
            self._owned = True
        log.info("ray engine: %d CPUs in the cluster", self._ray.cluster_resources().get("CPU", 0))  # type: ignore[no-untyped-call]  # ray is not typed

    @property
    def workers(self) -> int:
        if self.cfg.workers:
            return self.cfg.workers
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]  # ray is not typed

    def start(self) -> None:
        """Nothing to do: Ray starts its workers as tasks arrive."""

    def map(self, fn: Callable[..., Any], blocks: Iterable[tuple[Any, ...]], common: tuple[Any, ...] = ()) -> Iterator[tuple[int, Any]]:
        ray = self._ray
        task = ray.remote(max_retries=self.cfg.max_retries, num_cpus=1)(_call)
        shared = [ray.put(value) for value in (fn, *common)]  # sent once, not with every block
        window = 2 * self.workers
        pending: dict[Any, int] = {}
        for i, args in enumerate(blocks):
            ref = task.remote(*shared, *args)
            pending[ref] = i
            while len(pending) >= window:
                yield from self._take(pending)
        while pending:
            yield from self._take(pending)

    def _take(self, pending: dict[Any, int]) -> Iterator[tuple[int, Any]]:
        done, _ = self._ray.wait(list(pending), num_returns=1)
        for ref in done:
            yield pending.pop(ref), self._ray.get(ref)

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
            self._owned = False

    def __enter__(self) -> "RayEngine":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
