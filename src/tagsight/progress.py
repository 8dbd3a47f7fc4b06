"""Progress for long work: a tqdm bar on a terminal, periodic log lines (rate, ETA) elsewhere."""

from __future__ import annotations

import logging
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


class Progress:
    """Count work done; ``update(n)``. Shows a bar when stderr is a TTY, else logs every ``every`` seconds.

    ``initial`` is work done before this process (a resumed run): it counts towards ``done`` and the total
    but not towards the rate, so the ETA is that of the work this process does.
    """

    def __init__(self, total: int | None, desc: str, unit: str = "it", every: float = 10.0,
                 logger: logging.Logger | None = None, initial: int = 0) -> None:
        self.total, self.desc, self.unit, self.every = total, desc, unit, every
        self.log = logger or logging.getLogger("tagsight.progress")
        self.done = self.initial = initial
        self.start = self._last = time.monotonic()
        self._bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True, initial=initial)

    def update(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.log.info("%s", self.line())

    def rate(self) -> float:
        return (self.done - self.initial) / max(time.monotonic() - self.start, 1e-9)

    def line(self) -> str:
        rate = self.rate()
        if self.total:
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            return f"{self.desc}: {self.done}/{self.total} {self.unit} ({rate:.1f} {self.unit}/s, ETA {eta:.0f}s)"
        return f"{self.desc}: {self.done} {self.unit} ({rate:.1f} {self.unit}/s)"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self.log.info("%s done in %.1fs", self.line(), time.monotonic() - self.start)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], total: int | None, desc: str, unit: str = "it") -> Iterator[T]:
    """Iterate ``items`` with a Progress."""
    with Progress(total, desc, unit) as p:
        for item in items:
            yield item
            p.update()
