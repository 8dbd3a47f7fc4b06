"""The photo server of the fetch benchmark: a list of files served from memory on 127.0.0.1.

    python bench/fetch/server.py ROOT LIST [--port 0]

``LIST`` holds one path a line, relative to ``ROOT``; each is read once at start-up and served at
``/<path>`` with ``Content-Type: image/jpeg`` and its ``Content-Length``, over HTTP/1.1 with
keep-alive (as a web server or a CDN answers); every other path, ``/robots.txt`` and
``/.well-known/tdmrep.json`` included, is a 404 (a site without opt-out files). One thread per
connection. The chosen port is printed on stdout as ``PORT <n>`` once the server listens.

The benchmark runs it as its own process and stops it only after every timed run, so its CPU
time is never counted for either tool.
"""

from __future__ import annotations

import argparse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Sequence


def load(root: Path, listing: Path) -> dict[str, bytes]:
    """``/<relative path>`` -> file bytes for every path in ``listing``."""
    names = [line.strip() for line in listing.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {"/" + name: (root / name).read_bytes() for name in names}


def make_server(files: dict[str, bytes], port: int = 0) -> ThreadingHTTPServer:
    """A threading server on 127.0.0.1 answering GET from ``files``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes: no 40 ms delayed-ACK stall

        def do_GET(self) -> None:  # http.server's method name
            body = files.get(self.path.split("?", 1)[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "image/jpeg" if body is not None else "text/plain")
            self.send_header("Content-Length", str(len(body) if body is not None else 0))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path)
    p.add_argument("listing", type=Path)
    p.add_argument("--port", type=int, default=0)
    args = p.parse_args(argv)
    server = make_server(load(args.root, args.listing), args.port)
    sys.stdout.write(f"PORT {server.server_address[1]}\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
