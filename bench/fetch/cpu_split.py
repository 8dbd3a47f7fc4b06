"""The CPU of one URL-list ingest, split by thread: the fetch threads against the main thread.

    python bench/fetch/cpu_split.py URLS OUT [more tagsight ingest options]

Runs ``tagsight ingest URLS --format urls --out OUT ...`` in this process (``tagsight.cli.main``, this
checkout's ``src`` first on the path) with ``Fetcher._run_host`` (the loop every fetch thread runs) wrapped
to add up its CPU time (``time.thread_time``), and prints one JSON line: ``photos`` (lines of URLS),
``process`` (this process's CPU seconds over the run, every thread), ``main`` (the main thread's: the image
work, the chunk cache, shards and catalog) and ``fetch`` (the fetch threads'). ``bench/fetch/run.py`` runs it
on the full and the tiny URL lists and reports the steady difference per photo.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import tagsight.cli.ingest  # noqa: E402,F401 - imported before the clock starts, like the tool's start-up
from tagsight.cli import main as cli_main  # noqa: E402
from tagsight.ingest.fetch import Fetcher  # noqa: E402


def measure(argv: Sequence[str]) -> dict[str, Any]:
    spent = {"fetch": 0.0}
    lock = threading.Lock()
    run_host = Fetcher._run_host

    def timed(self: Fetcher, host: str) -> None:
        start = time.thread_time()
        try:
            run_host(self, host)
        finally:
            with lock:
                spent["fetch"] += time.thread_time() - start

    Fetcher._run_host = timed  # type: ignore[method-assign]
    try:
        process, main = time.process_time(), time.thread_time()
        code = cli_main(["ingest", argv[0], "--format", "urls", "--out", argv[1], *argv[2:]])
        process, main = time.process_time() - process, time.thread_time() - main
    finally:
        Fetcher._run_host = run_host  # type: ignore[method-assign]
    if code:
        raise SystemExit(f"cpu_split: the ingest failed (exit {code})")
    photos = sum(1 for line in Path(argv[0]).read_text(encoding="utf-8").splitlines() if line.strip())
    return {"photos": photos, "process": process, "main": main, "fetch": spent["fetch"]}


if __name__ == "__main__":
    result = measure(sys.argv[1:])
    sys.stdout.write(json.dumps(result) + "\n")
