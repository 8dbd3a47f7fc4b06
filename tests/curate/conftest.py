"""Constructed photos for the curation tests, and a real browser against a real server for the web pages."""

import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def photo(seed: int = 0, size=(128, 96)) -> Image.Image:
    """A sharp, colourful, well-exposed synthetic photo: coloured shapes with edges on a gradient."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = np.linspace(60, 190, w)[None, :, None] * np.ones((h, 1, 3))
    img = Image.fromarray(np.clip(base + rng.normal(0, 4, (h, w, 3)), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.integers(0, w - 10), rng.integers(0, h - 10)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        draw.rectangle([x, y, x + rng.integers(5, 30), y + rng.integers(5, 30)], fill=colour)
    return img


@pytest.fixture
def make_photo():
    return photo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server():
    """``url = live_server(app)``: the app served by uvicorn on a free port in a thread, stopped after the test."""
    uvicorn = pytest.importorskip("uvicorn")
    running = []

    def start(app) -> str:
        port = free_port()
        srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=srv.run, daemon=True)
        thread.start()
        running.append((srv, thread))
        for _ in range(100):
            if srv.started:
                break
            time.sleep(0.05)
        return f"http://127.0.0.1:{port}"

    yield start
    for srv, thread in running:
        srv.should_exit = True
        thread.join(timeout=5)


@pytest.fixture
def browser_page():
    """A page of Debian's chromium, headless, driven by playwright (skips without either)."""
    if CHROMIUM is None:
        pytest.skip("Debian chromium not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless=new"])
        yield browser.new_page()
        browser.close()
