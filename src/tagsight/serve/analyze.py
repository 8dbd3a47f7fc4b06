"""``POST /v1/analyze``: several apps for one image, the backbone run once per image for all of them.

A request names its apps (``apps=hashtags,alt-text``: query parameter, form field or JSON field) and
per-app options (``{"hashtags": {"k": 3}}`` in the body, or ``?hashtags.k=3``). ``parse_request``
checks both once, before anything is queued: an app that is not loaded is 404 ``unknown_app``, an
option an app does not take 422 ``unknown_option``, a value it cannot use 422 ``invalid_option``.

``MultiApp`` is served behind its own ``MicroBatcher`` with ``predicts_mixed``: every request of a
batching round, whatever apps it asks for, is answered by one ``predict_mixed`` call, which embeds
the round's images once per backbone (all apps of a bundle share one) and runs each asked app's head
on the rows of the requests that asked for it, grouped by equal options.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from tagsight.apps.base import App
from tagsight.apps.embedder import FeatureApp
from tagsight.serve.decode import query_value
from tagsight.serve.errors import ServeError

ANALYZE = "analyze"


@dataclass(frozen=True)
class AnalyzeRequest:
    """The apps a request asks for, in order, and each one's options (``{}`` when none)."""

    apps: tuple[str, ...]
    options: dict[str, dict[str, Any]]

    def as_options(self) -> dict[str, Any]:
        """The form the batcher carries to ``MultiApp.predict_mixed``."""
        return {"apps": list(self.apps), "options": self.options}


def split_apps(value: Any) -> tuple[str, ...]:
    """``"hashtags, alt-text"`` or ``["hashtags", "alt-text"]`` as a tuple of distinct names, in order."""
    if isinstance(value, str):
        names = [n.strip() for n in value.split(",")]
    elif isinstance(value, list) and all(isinstance(n, str) for n in value):
        names = [n.strip() for n in value]
    else:
        raise ServeError("invalid_request", f"apps must be a comma-separated text or a list of names, got {value!r}")
    names = [n for n in names if n]
    if not names:
        raise ServeError("missing_apps", "name the apps to run: apps=hashtags,alt-text (query or form field)")
    return tuple(dict.fromkeys(names))


def parse_request(query: list[tuple[str, str]], body_apps: Any, body_options: dict[str, Any],
                  loaded: Mapping[str, Any]) -> AnalyzeRequest:
    """The checked request: apps from the query (``apps=``) or the body, per-app options from both.

    ``loaded`` maps each loaded app name to something with ``check_options(options)`` (its batcher).
    """
    query_apps = [v for k, v in query if k == "apps"]
    if len(query_apps) > 1 or (query_apps and body_apps is not None):
        raise ServeError("invalid_request", "apps is given twice (query string and/or body)")
    apps = split_apps(query_apps[0] if query_apps else body_apps if body_apps is not None else "")
    missing = [a for a in apps if a not in loaded]
    if missing:
        raise ServeError("unknown_app", f"no app {', '.join(map(repr, missing))} is loaded "
                                        f"(loaded: {', '.join(sorted(loaded)) or 'none'})")
    options = _body_options(body_options, apps)
    for key, value in query:
        if key == "apps":
            continue
        app, _, name = key.partition(".")
        if not name or app not in apps:
            raise ServeError("invalid_options", f"query option {key!r}: analyze options are APP.OPTION of an app "
                                                f"asked for ({', '.join(apps)}), e.g. hashtags.k=3")
        if name in options[app]:
            raise ServeError("invalid_options", f"option {key!r} is given twice (query string and/or body)")
        options[app][name] = query_value(value)
    for app in apps:
        loaded[app].check_options(options[app])
    return AnalyzeRequest(apps, options)


def _body_options(body: dict[str, Any], apps: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {a: {} for a in apps}
    for app, opts in body.items():
        if app not in out or not isinstance(opts, dict):
            raise ServeError("invalid_options", "analyze options are one JSON object per app asked for, e.g. "
                                                f"{{\"hashtags\": {{\"k\": 3}}}}; got {app!r}: {opts!r}")
        out[app] = dict(opts)
    return out


class MultiApp(App):
    """The loaded apps behind one batcher: answers ``{app: answer}`` per image, one backbone pass per batch."""

    name = ANALYZE
    options = {"apps": list, "options": dict}
    predicts_mixed = True

    def __init__(self, apps: Mapping[str, App]) -> None:
        self.apps = dict(apps)

    def predict(self, images: Sequence[Image.Image], **options: Any) -> list[dict[str, Any]]:
        return self.predict_mixed(images, [options] * len(images))

    def predict_mixed(self, images: Sequence[Image.Image], requests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``requests[i]`` (``{"apps": [...], "options": {app: {...}}}``) says what image ``i`` asks for."""
        features: dict[int, np.ndarray] = {}
        out: list[dict[str, Any]] = [{} for _ in images]
        for name in dict.fromkeys(a for r in requests for a in r["apps"]):
            groups: dict[str, list[int]] = {}
            for i, r in enumerate(requests):
                if name in r["apps"]:
                    opts = r["options"].get(name, {})
                    groups.setdefault(json.dumps(opts, sort_keys=True, default=repr), []).append(i)
            for rows in groups.values():
                opts = requests[rows[0]]["options"].get(name, {})
                answers = self._answer(name, images, rows, features, opts)
                for i, answer in zip(rows, answers):
                    out[i][name] = answer
        return [{a: out[i][a] for a in r["apps"]} for i, r in enumerate(requests)]

    def _answer(self, name: str, images: Sequence[Image.Image], rows: list[int], features: dict[int, np.ndarray],
                options: dict[str, Any]) -> list[dict[str, Any]]:
        app, subset = self.apps[name], [images[i] for i in rows]
        if not isinstance(app, FeatureApp):
            return app.predict(subset, **options)
        key = id(app.embedder)
        if key not in features:   # the whole round's images, once per backbone
            features[key] = app.embedder.embed(list(images))
        return app.predict_features(features[key][rows], subset, **options)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "apps": sorted(self.apps)}
