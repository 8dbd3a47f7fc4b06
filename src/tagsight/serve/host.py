"""The apps being served, each behind its ``MicroBatcher``; swapped whole on reload, never half."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from tagsight.apps.base import App
from tagsight.serve.analyze import ANALYZE, MultiApp
from tagsight.serve.batching import BatchObserver, MicroBatcher
from tagsight.serve.errors import ServeError
from tagsight.serve.settings import ServeSettings

log = logging.getLogger(__name__)


def check_apps(apps: Mapping[str, App]) -> dict[str, App]:
    """``apps`` as a dict, after checking every key is its app's name and every value an ``App``."""
    out = {}
    for key, app in apps.items():
        if not isinstance(app, App):
            raise TypeError(f"apps[{key!r}] is a {type(app).__name__}, not a tagsight App")
        if key != app.name:
            raise ValueError(f"apps[{key!r}] is the app named {app.name!r}; serve it under its own name")
        out[key] = app
    return out


class AppHost:
    """``name -> MicroBatcher`` for the current apps, and the ``analyze`` batcher over all of them
    (``tagsight.serve.analyze``). ``swap`` starts the new ones before retiring the old."""

    def __init__(self, settings: ServeSettings, observe: BatchObserver | None = None) -> None:
        self.settings, self._observe = settings, observe
        self.batchers: dict[str, MicroBatcher] = {}
        self.analyzer: MicroBatcher | None = None
        self.reloads = 0

    def _batcher(self, app: App) -> MicroBatcher:
        s = self.settings
        batcher = MicroBatcher(app, s.max_batch, s.max_wait_ms, s.max_queue, self._observe)
        batcher.start()
        return batcher

    def _start(self, apps: Mapping[str, App]) -> tuple[dict[str, MicroBatcher], MicroBatcher | None]:
        checked = check_apps(apps)
        if ANALYZE in checked:
            raise ValueError(f"an app may not be named {ANALYZE!r}: that is the endpoint of several apps at once")
        batchers = {name: self._batcher(app) for name, app in checked.items()}
        return batchers, (self._batcher(MultiApp(checked)) if checked else None)

    def start(self, apps: Mapping[str, App]) -> None:
        self.batchers, self.analyzer = self._start(apps)

    async def swap(self, apps: Mapping[str, App]) -> None:
        """Serve ``apps`` from now on; requests already waiting on the old apps are still answered by them."""
        old, old_analyzer = self.batchers, self.analyzer
        self.batchers, self.analyzer = self._start(apps)
        self.reloads += 1
        await asyncio.gather(*(b.close() for b in _all(old, old_analyzer)))
        log.info("reloaded: now serving %s", ", ".join(sorted(self.batchers)) or "no apps")

    async def close(self) -> None:
        old, old_analyzer = self.batchers, self.analyzer
        self.batchers, self.analyzer = {}, None
        await asyncio.gather(*(b.close() for b in _all(old, old_analyzer)))

    def get_analyzer(self) -> MicroBatcher:
        if self.analyzer is None:
            raise ServeError("app_not_loaded", "no app is loaded")
        return self.analyzer

    def get(self, name: str) -> MicroBatcher:
        try:
            return self.batchers[name]
        except KeyError:
            loaded = ", ".join(sorted(self.batchers)) or "none"
            raise ServeError("app_not_loaded", f"no app {name!r} is loaded (loaded: {loaded})") from None

    def depths(self) -> dict[str, int]:
        return {name: b.depth for name, b in self.batchers.items()}

    def describe(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, batcher in self.batchers.items():
            try:
                out[name] = dict(batcher.app.describe())
            except Exception as exc:  # a broken describe() must not take /healthz down
                log.warning("%s.describe() failed: %s", name, exc)
                out[name] = {"name": name, "describe_error": f"{type(exc).__name__}: {exc}"}
        return out


def _all(batchers: dict[str, MicroBatcher], analyzer: MicroBatcher | None) -> list[MicroBatcher]:
    return [*batchers.values(), *([analyzer] if analyzer is not None else [])]
