"""Small real apps and a real uvicorn server on a free port for the server tests.

``ColourApp`` answers each image's size and mean colour and costs a fixed time per predict call
(plus a little per image), so batching is measurable; ``SimilarColours`` is an index app that
finds posts of similar mean colour and consults a ``TombstoneWatcher`` on every query.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tagsight.apps.base import App
from tagsight.privacy.tombstones import TombstoneWatcher
from tagsight.serve.app import create_app
from tagsight.serve.background import BackgroundServer
from tagsight.serve.settings import ServeSettings

TOKEN = "test-admin-token-0123456789"


def mean_colour(img: Image.Image) -> list[float]:
    return [round(float(v), 3) for v in np.asarray(img.convert("RGB"), dtype=np.float64).mean(axis=(0, 1))]


class ColourApp(App):
    """Size and mean colour of each image; ``per_call`` seconds per predict call, ``per_image`` per image."""

    name = "hashtags"

    def __init__(self, name: str = "hashtags", per_call: float = 0.02, per_image: float = 0.0005,
                 version: int = 1) -> None:
        self.name, self.per_call, self.per_image, self.version = name, per_call, per_image, version
        self.calls: list[int] = []

    def predict(self, images: Sequence[Image.Image], k: int = 3) -> list[dict[str, Any]]:
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        time.sleep(self.per_call + self.per_image * len(images))
        self.calls.append(len(images))
        return [{"width": im.width, "height": im.height, "mean": mean_colour(im), "k": k,
                 "version": self.version} for im in images]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": "colour", "version": self.version}


class BrokenApp(App):
    """Fails (a bug, not the client's fault) on images 13 pixels wide; answers the others."""

    name = "moderate"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, images: Sequence[Image.Image]) -> list[dict[str, Any]]:
        self.calls.append(len(images))
        time.sleep(0.01)
        if any(im.width == 13 for im in images):
            raise RuntimeError("deliberate bug for width 13")
        return [{"flagged": False} for _ in images]


@dataclass
class _Post:
    key: str
    author: str
    hashtags: list[str]
    colour: np.ndarray


class SimilarColours(App):
    """An index of posts by mean colour; never returns (or adds) a post its dataset's tombstones forget."""

    name = "similar"

    def __init__(self, dataset_dir: Path) -> None:
        self.watcher = TombstoneWatcher(dataset_dir)
        self.posts: dict[str, _Post] = {}

    def add(self, images: Sequence[Image.Image], posts: Sequence[Mapping[str, Any]]) -> int:
        stones, added = self.watcher.current(), 0
        for img, post in zip(images, posts, strict=True):
            if stones.forgets(post["post_key"], post["author_id"], post["hashtags"]):
                continue
            self.posts[post["post_key"]] = _Post(post["post_key"], post["author_id"], list(post["hashtags"]),
                                                 np.array(mean_colour(img)))
            added += 1
        return added

    def remove(self, post_keys: Sequence[str]) -> int:
        return sum(self.posts.pop(key, None) is not None for key in post_keys)

    def predict(self, images: Sequence[Image.Image], k: int = 5) -> list[dict[str, Any]]:
        stones = self.watcher.current()
        live = [p for p in self.posts.values() if not stones.forgets(p.key, p.author, p.hashtags)]
        out = []
        for img in images:
            colour = np.array(mean_colour(img))
            ranked = sorted(live, key=lambda p: float(np.linalg.norm(p.colour - colour)))[:k]
            out.append({"neighbours": [{"post_key": p.key, "distance": round(float(np.linalg.norm(p.colour - colour)), 3)}
                                       for p in ranked]})
        return out


# --------------------------------------------------------------------------------------- images


def image_bytes(colour=(200, 30, 40), size=(32, 24), fmt: str = "JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, fmt)
    return buf.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------------------- the server


class RunningServer(BackgroundServer):
    """The library's background server, with an httpx client for the tests."""

    def client(self, **kw) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)


@pytest.fixture
def serve():
    """``serve(apps, **settings) -> RunningServer`` (stopped at the end of the test)."""
    running: list[RunningServer] = []

    def start(apps: Mapping[str, App], loader=None, **settings) -> RunningServer:
        server = RunningServer(create_app(apps, ServeSettings(**settings), loader=loader)).__enter__()
        running.append(server)
        return server

    yield start
    for server in running:
        server.__exit__()


@pytest.fixture
def colour_apps() -> dict[str, App]:
    names = ("hashtags", "alt-text", "categorize")
    apps: dict[str, App] = {n: ColourApp(n) for n in names}
    apps["moderate"] = BrokenApp()
    return apps


@pytest.fixture
def kit():
    """This module: the fake apps and image helpers for the tests (conftest is not importable by name)."""
    import sys

    return sys.modules[__name__]


def noise_jpeg(size=(200, 200), seed: int = 0) -> bytes:
    """A JPEG of random noise: large for its size (does not compress)."""
    buf = io.BytesIO()
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "JPEG", quality=20)
    return buf.getvalue()
