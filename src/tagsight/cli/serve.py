"""``tagsight serve BUNDLE``: the HTTP server over a bundle's apps (FastAPI + uvicorn)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tagsight.cli.options import add_deprecated, input_file, optional_path

if TYPE_CHECKING:
    from fastapi import FastAPI


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve hashtags, alt text, categories, moderation and similar images over HTTP",
                       description="Load the apps of a bundle and answer POST /v1/<app> with one image each "
                                   "(multipart, base64 JSON or a raw image body), batching concurrent requests; "
                                   "POST /v1/analyze?apps=hashtags,alt-text runs several apps on one backbone pass. "
                                   "GET /healthz, /metrics (Prometheus), /docs (OpenAPI). Admin routes "
                                   "(reload, index add/remove) need --admin-token-file. See docs/serving.md.")
    p.add_argument("bundle", type=optional_path, nargs="?", default=argparse.SUPPRESS, help="the bundle folder the apps load from")
    add_deprecated(p, "--bundle", "tagsight serve BUNDLE", dest="bundle", type=optional_path)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-batch", type=int, default=32, help="largest batch per predict call; 1 turns batching off")
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="longest a request waits for a batch to fill")
    p.add_argument("--max-queue", type=int, default=1024, help="requests waiting per app before 429 overloaded")
    p.add_argument("--max-bytes", type=int, default=10 * 2**20, help="largest image file in bytes (default 10 MiB)")
    p.add_argument("--max-pixels", type=int, default=25_000_000, help="largest width x height (default 25 M)")
    p.add_argument("--max-side", type=int, default=1024, help="images are scaled down to this side before the apps")
    p.add_argument("--admin-token-file", type=input_file, default=None,
                   help="file holding the admin bearer token (>= 16 characters), local or an fsspec URL (read once "
                        "at start); no file: admin routes are off")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda[:N]")
    p.add_argument("--log-level", default="info", help="uvicorn log level")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tagsight.fsio import ReasonError

    try:
        if getattr(args, "bundle", None) is None:
            raise ReasonError("missing_bundle", "give the BUNDLE folder to serve: tagsight serve BUNDLE")
        app = build(args)
    except (ReasonError, ValueError, OSError) as exc:
        print(f"tagsight serve: {getattr(exc, 'reason', 'error')}: {exc}", file=sys.stderr)
        return 2
    import uvicorn

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    return 0


def build(args: argparse.Namespace) -> FastAPI:
    """The FastAPI app for the parsed arguments (apps loaded, settings checked)."""
    from tagsight.serve.app import create_app
    from tagsight.serve.loader import bundle_loader
    from tagsight.serve.settings import ServeSettings

    settings = ServeSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                             max_bytes=args.max_bytes, max_pixels=args.max_pixels, max_side=args.max_side,
                             admin_token=read_token(args.admin_token_file))
    loader = bundle_loader(args.bundle, args.device)
    return create_app(loader(), settings, loader=loader)


def read_token(path: Path | str | None) -> str | None:
    """The admin token of a local file or a file at an fsspec URL (read once, retried); an unreadable or empty one is
    refused (``admin_token_unreadable``, ``admin_token_empty``) naming the file as given."""
    from tagsight.fsio import ReasonError
    from tagsight.storage import read_bytes

    if path is None:
        return None
    try:
        token = read_bytes(path).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ReasonError("admin_token_unreadable", f"admin token file {path} cannot be read: {exc}") from None
    if not token:
        raise ReasonError("admin_token_empty", f"admin token file {path} is empty")
    return token
