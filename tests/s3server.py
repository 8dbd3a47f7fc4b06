"""A real S3 API for tests and benchmarks: moto's threaded server on 127.0.0.1, optionally behind a TCP proxy that
drops a connection in the middle of a ranged GET response or slows every response down."""

from __future__ import annotations

import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextmanager
def moto_s3() -> Iterator[str]:
    """Start moto's S3 server on a free port of 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    """The environment a client (s3fs, boto3, a tagsight subprocess) needs to reach ``endpoint``."""
    return {**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def upload(folder: Path, url: str) -> None:
    """Copy a local folder to ``s3://bucket/prefix``, creating the bucket (the store of ``AWS_ENDPOINT_URL``)."""
    bucket(url)
    put_folder(folder, url)


def bucket(url: str) -> None:
    """Create the bucket of ``s3://bucket/...`` unless it exists (moto keeps buckets across servers in a process)."""
    from tagsight.storage import open_filesystem

    fs, _ = open_filesystem(url)
    name = url.removeprefix("s3://").split("/")[0]
    if not fs.exists(name):
        fs.mkdir(name)


class FaultyProxy:
    """A TCP proxy to ``target`` (host, port): ``drops`` ranged GET responses are cut after their headers and a few
    body bytes (the connection closes mid-read); ``delay`` seconds are slept before every chunk sent back; after
    ``cutoff`` requests the line goes dead for good (every further request is dropped unanswered).
    ``bytes_down`` and ``requests`` count what crossed it (response bytes, headers included; HTTP requests)."""

    def __init__(self, target: tuple[str, int], drops: int = 0, delay: float = 0.0, cutoff: int | None = None
                 ) -> None:
        self.target, self.drops, self.delay, self.cutoff = target, drops, delay, cutoff
        self.dropped = self.bytes_down = self.requests = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            state = {"ranged": False}
            threading.Thread(target=self._up, args=(client, server, state), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, state), daemon=True).start()

    def _up(self, src: socket.socket, dst: socket.socket, state: dict) -> None:
        try:
            while data := src.recv(65536):
                if data.startswith((b"GET", b"HEAD", b"PUT", b"POST", b"DELETE")):
                    with self._lock:
                        self.requests += 1
                        dead = self.cutoff is not None and self.requests > self.cutoff
                    if dead:
                        break
                if data.startswith(b"GET") and b"range:" in data.lower():
                    state["ranged"] = True
                dst.sendall(data)
        except OSError:
            pass
        _close(src, dst)

    def _take_drop(self) -> bool:
        with self._lock:
            if self.dropped < self.drops:
                self.dropped += 1
                return True
            return False

    def _down(self, src: socket.socket, dst: socket.socket, state: dict) -> None:
        cut = -1   # body bytes still to pass before the line goes dead (-1: not cutting this response)
        try:
            while data := src.recv(65536):
                if self.delay:
                    time.sleep(self.delay)
                if cut < 0 and state["ranged"] and data.startswith(b"HTTP/1.1 206") and self._take_drop():
                    cut = data.find(b"\r\n\r\n") + 4 + 4      # headers and 4 body bytes
                if cut >= 0 and len(data) >= cut:
                    dst.sendall(data[:cut])
                    break
                cut = cut - len(data) if cut >= 0 else cut
                dst.sendall(data)
                with self._lock:
                    self.bytes_down += len(data)
        except OSError:
            pass
        _close(src, dst)


def _close(*socks: socket.socket) -> None:
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        s.close()


def put_folder(folder: Path, url: str) -> None:
    """Copy a local folder to any fsspec URL (``memory://``, or ``s3://`` with a bucket that exists) file by file."""
    from tagsight.storage import open_filesystem

    fs, inner = open_filesystem(url)
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        fs.pipe_file(f"{inner.rstrip('/')}/{path.relative_to(folder).as_posix()}", path.read_bytes())
