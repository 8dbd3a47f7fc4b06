"""A tiny web site on 127.0.0.1, started by a test, that serves images and misbehaves on purpose.

Routes (``Site.url(path)``):

- ``/img/<n>.jpg``: a distinct tiny JPEG per n (also under ``/private/``, ``/reserved/``, ``/cdn/``);
- ``/slow.jpg``: waits ``slow_s`` before answering; ``/trickle.jpg``: sends its body slowly;
- ``/flaky/<n>.jpg``: 500 on the first request, then the image; ``/always500.jpg``: 500;
- ``/busy/<n>.jpg``: 429 with ``Retry-After: 0`` first, then the image; ``/busy-long.jpg``: 429 with a
  Retry-After of an hour; ``/gone.jpg``: 404;
- ``/redirect/<n>.jpg``: 302 to ``/img/<n>.jpg``; ``/loop.jpg``: redirects to itself; ``/to-private.jpg``:
  302 to ``/private/1.jpg``;
- ``/big.jpg``: 200 KB with its Content-Length; ``/big-nolength.jpg``: the same without (streamed, closed);
- ``/page.jpg``: HTML labelled text/html; ``/mislabelled.jpg``: text labelled image/jpeg;
- ``/noai/<n>.jpg``: ``X-Robots-Tag: noai``; ``/noindex.jpg``: ``X-Robots-Tag: noindex, nofollow``;
  ``/scoped-us.jpg``: ``X-Robots-Tag: tagsight: noimageai``; ``/scoped-other.jpg``: ``otherbot: noai``;
- ``/tdm/<n>.jpg``: ``tdm-reservation: 1``;
- ``/robots.txt`` and ``/.well-known/tdmrep.json``: ``robots`` and ``tdmrep`` when set, else 404
  (``robots_status`` makes robots.txt answer that status instead).

Every request is recorded in ``requests`` (path) and ``arrived`` (first arrival time), and the most
requests in flight at once in ``peak``.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import picture


def jpeg(n: int, size: tuple[int, int] = (40, 32)) -> bytes:
    buf = io.BytesIO()
    picture(1000 + n, size).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class Site:
    """One origin on 127.0.0.1 (its own port). Use as a context manager."""

    def __init__(self, robots: str | None = None, tdmrep: Any = None, slow_s: float = 1.0,
                 robots_status: int | None = None, delay_s: float = 0.0, gather: int = 0) -> None:
        self.robots, self.tdmrep, self.slow_s, self.robots_status = robots, tdmrep, slow_s, robots_status
        self.delay_s = delay_s  # every image answer waits this long (for concurrency checks)
        self.gather = gather    # every image answer first waits (up to 5 s) until this many requests are in flight
        self.requests: list[str] = []
        self.hits: Counter = Counter()
        self.arrived: dict[str, float] = {}  # path -> time.monotonic() of its first request
        self.peak = 0
        self._inflight = 0
        self._lock = threading.Condition()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server's method name
                site._enter(self.path)
                try:
                    site._answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    site._leave()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> "Site":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.origin + path

    def _enter(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)
            self.hits[path] += 1
            self.arrived.setdefault(path, time.monotonic())
            self._inflight += 1
            self.peak = max(self.peak, self._inflight)
            self._lock.notify_all()

    def _leave(self) -> None:
        with self._lock:
            self._inflight -= 1

    # ----------------------------------------------------------------------------- answers

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        path, hits = h.path, self.hits[h.path]
        if path == "/robots.txt":
            if self.robots_status:
                return _send(h, self.robots_status, b"", "text/plain")
            return _send(h, 200, self.robots.encode(), "text/plain") if self.robots is not None else _send(h, 404)
        if path == "/.well-known/tdmrep.json":
            if self.tdmrep is None:
                return _send(h, 404)
            body = self.tdmrep if isinstance(self.tdmrep, str) else json.dumps(self.tdmrep)
            return _send(h, 200, body.encode(), "application/json")
        n = _number(path)
        if self.gather:     # overlap that does not depend on how fast a busy machine schedules the fetcher's threads
            with self._lock:
                self._lock.wait_for(lambda: self._inflight >= self.gather, timeout=5.0)
        if self.delay_s:
            time.sleep(self.delay_s)
        if path == "/slow.jpg":
            time.sleep(self.slow_s)
            return _send(h, 200, jpeg(0), "image/jpeg")
        if path == "/trickle.jpg":
            return _trickle(h, jpeg(0), self.slow_s)
        if path.startswith("/flaky/"):
            return _send(h, 500) if hits == 1 else _send(h, 200, jpeg(n), "image/jpeg")
        if path == "/always500.jpg":
            return _send(h, 500)
        if path.startswith("/busy/"):
            return _send(h, 429, headers={"Retry-After": "0"}) if hits == 1 else _send(h, 200, jpeg(n), "image/jpeg")
        if path == "/busy-long.jpg":
            return _send(h, 429, headers={"Retry-After": "3600"})
        if path == "/gone.jpg":
            return _send(h, 404)
        if path.startswith("/redirect/"):
            return _send(h, 302, headers={"Location": f"/img/{n}.jpg"})
        if path == "/loop.jpg":
            return _send(h, 302, headers={"Location": "/loop.jpg"})
        if path == "/to-private.jpg":
            return _send(h, 302, headers={"Location": "/private/1.jpg"})
        if path == "/big.jpg":
            return _send(h, 200, b"\xff" * 200_000, "image/jpeg")
        if path == "/big-nolength.jpg":
            return _send(h, 200, b"\xff" * 200_000, "image/jpeg", length=False)
        if path == "/page.jpg":
            return _send(h, 200, b"<html><body>not an image</body></html>", "text/html; charset=utf-8")
        if path == "/mislabelled.jpg":
            return _send(h, 200, b"this is plain text, not a JPEG", "image/jpeg")
        if path.startswith("/noai/"):
            return _send(h, 200, jpeg(n), "image/jpeg", headers={"X-Robots-Tag": "noai"})
        if path == "/noindex.jpg":
            return _send(h, 200, jpeg(90), "image/jpeg", headers={"X-Robots-Tag": "noindex, nofollow"})
        if path == "/scoped-us.jpg":
            return _send(h, 200, jpeg(91), "image/jpeg", headers={"X-Robots-Tag": "tagsight: noimageai"})
        if path == "/scoped-other.jpg":
            return _send(h, 200, jpeg(92), "image/jpeg", headers={"X-Robots-Tag": "otherbot: noai"})
        if path.startswith("/tdm/"):
            return _send(h, 200, jpeg(n), "image/jpeg", headers={"tdm-reservation": "1"})
        if re.fullmatch(r"/(img|private|reserved|cdn)/\d+\.jpg", path):
            return _send(h, 200, jpeg(n), "image/jpeg")
        return _send(h, 404)


def _number(path: str) -> int:
    m = re.search(r"(\d+)\.jpg$", path)
    return int(m.group(1)) if m else 0


def _send(h: BaseHTTPRequestHandler, status: int, body: bytes = b"", ctype: str | None = None,
          headers: dict[str, str] | None = None, length: bool = True) -> None:
    h.send_response(status)
    if ctype:
        h.send_header("Content-Type", ctype)
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    if length:
        h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def _trickle(h: BaseHTTPRequestHandler, body: bytes, seconds: float) -> None:
    h.send_response(200)
    h.send_header("Content-Type", "image/jpeg")
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    step = max(1, len(body) // 10)
    for i in range(0, len(body), step):
        h.wfile.write(body[i:i + step])
        h.wfile.flush()
        time.sleep(seconds / 10)
