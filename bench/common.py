"""Shared helpers for the benchmarks under ``bench/``: timing, machine facts, and docs/benchmarks.md.

Each benchmark is a script (``bench/<name>/run.py``) that runs the tools it compares as
subprocesses, so that their CPU time (workers included) is measurable from here, and then writes
its own ``## <title>`` section of ``docs/benchmarks.md``, leaving the other sections alone.

CPU time of a subprocess is read from ``resource.getrusage(RUSAGE_CHILDREN)`` before and after
it: user + system time of every descendant that has exited and been waited for (pool workers
included, as long as the tool joins them, which both tagsight and img2dataset do). Runs must
therefore be sequential: never time two subprocesses at once with these helpers.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import platform
import re
import shutil
import tempfile
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Sequence, TypeVar

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
BENCH_DOC = REPO / "docs" / "benchmarks.md"
DOC_HEADER = (
    "# Benchmarks\n\n"
    "Each `## ` section below is written by one script under `bench/` and replaced in place when it is\n"
    "run again; the exact command, the machine and the date are in the section. Figures from a shared\n"
    "2-core machine are noisy: compare CPU-time figures before wall-clock ones.\n"
)

T = TypeVar("T")


# --------------------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class Timing:
    """Wall-clock and CPU seconds of one measured piece of work on ``items`` items."""

    label: str
    items: int
    wall: float
    cpu: float
    command: tuple[str, ...] = ()
    returncode: int = 0
    output: str = field(default="", repr=False)

    @property
    def per_wall(self) -> float:
        """Items per wall-clock second."""
        return self.items / self.wall if self.wall > 0 else float("nan")

    @property
    def per_cpu(self) -> float:
        """Items per CPU-second (user + system, all processes)."""
        return self.items / self.cpu if self.cpu > 0 else float("nan")

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_timed(label: str, command: Sequence[str], items: int, env: dict[str, str] | None = None,
              cwd: str | Path | None = None) -> Timing:
    """Run ``command`` to completion; wall time, and CPU time of it and all its (reaped) descendants.

    Output (stdout and stderr together) is captured and kept in ``Timing.output``.
    """
    full_env = {**os.environ, **(env or {})}
    cpu0, t0 = _children_cpu(), time.perf_counter()
    proc = subprocess.run(list(command), env=full_env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace", check=False)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    timing = Timing(label, items, wall, cpu, tuple(command), proc.returncode, proc.stdout)
    log.info("%s: %d items, %.2fs wall, %.2fs CPU (%.0f/s wall, %.0f per CPU-s)%s", label, items, wall, cpu,
             timing.per_wall, timing.per_cpu, "" if timing.ok else f"  FAILED rc={proc.returncode}")
    return timing


def time_call(label: str, items: int, fn: Callable[..., T], *args: object, **kwargs: object) -> tuple[Timing, T]:
    """Call ``fn`` in this process; wall time and this process's CPU time (threads included)."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    value = fn(*args, **kwargs)
    timing = Timing(label, items, time.perf_counter() - t0, time.process_time() - cpu0)
    return timing, value


def median_timing(timings: Sequence[Timing]) -> Timing:
    """The run with the median CPU time (the lower middle one for an even count)."""
    if not timings:
        raise ValueError("median_timing needs at least one timing")
    return sorted(timings, key=lambda t: t.cpu)[(len(timings) - 1) // 2]


def warm_page_cache(paths: Iterable[str | Path]) -> int:
    """Read every file once so that every timed run sees the same (warm) page cache; returns bytes read."""
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                total += len(block)
    return total


# --------------------------------------------------------------------------------------- machine


def cpu_model() -> str:
    """The ``model name`` line of /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "n/a"


def machine_facts(packages: Sequence[str] = ("pillow",)) -> dict[str, str]:
    """nproc, usable CPUs, CPU model, OS, Python and package versions, load average, UTC date."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    facts = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": f"{os.cpu_count()} ({usable} usable by this process)",
        "cpu": cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }
    facts.update({name: package_version(name) for name in packages})
    facts["load average at start (1/5/15 min)"] = load_average()
    return facts


# --------------------------------------------------------------------------------------- markdown


def fmt(value: float, digits: int = 0) -> str:
    """A number for a table: fixed digits, thousands separators, ``n/a`` for NaN."""
    if value != value:  # NaN
        return "n/a"
    return f"{value:,.{digits}f}"


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table; numeric-looking columns are right-aligned."""
    rows = [[str(c) for c in row] for row in rows]
    numeric = [all(re.fullmatch(r"[-+]?[\d,.]+x?%?|n/a", r[i] or "n/a") for r in rows) and bool(rows)
               for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if n else "---" for n in numeric) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def facts_markdown(facts: dict[str, str]) -> str:
    return "\n".join(f"- {k}: {v}" for k, v in facts.items())


def command_line(command: Sequence[str]) -> str:
    """A shell-quoted command line, with this repository's path shortened to ``.``."""
    import shlex

    text = " ".join(shlex.quote(str(c)) for c in command)
    return text.replace(str(REPO) + "/", "").replace(str(REPO), ".")


# --------------------------------------------------------------------------------------- processes


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (read from /proc), also those that started a session of their own.

    torchrun starts its workers with ``start_new_session=True``: killing the launcher's process group
    leaves them running, so a kill test must find them by parentage.
    """
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def kill_tree(pid: int, timeout: float = 10.0) -> None:
    """SIGKILL ``pid`` and every process below it (a crash of the whole job), and wait until they are gone."""
    import signal

    targets = [pid, *descendants(pid)]
    for target in targets:
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(_running(t) for t in targets) and time.monotonic() < deadline:
        time.sleep(0.05)


def _running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# --------------------------------------------------------------------------------------- the doc


def _split_sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """(preamble, [(title, section text)]) split at ``## `` headings outside fenced code blocks."""
    preamble, sections, fenced = [], [], False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            sections.append([line[3:].strip(), line])
        elif sections:
            sections[-1][1] += line
        else:
            preamble.append(line)
    return "".join(preamble), [(title, body) for title, body in sections]


def write_section(title: str, body: str, doc: str | Path = BENCH_DOC) -> Path:
    """Write ``## title`` + ``body`` into ``doc``: replace the section of that title, else append it.

    Other sections and the preamble are kept byte for byte; the file is created with a short
    header when missing, and replaced atomically.
    """
    if "\n" in title or not title.strip():
        raise ValueError(f"section title must be one non-empty line, got {title!r}")
    doc = Path(doc)
    text = doc.read_text(encoding="utf-8") if doc.exists() else DOC_HEADER
    preamble, sections = _split_sections(text)
    new = f"## {title}\n\n{body.strip()}\n\n"
    titles = [t for t, _ in sections]
    if title in titles:
        sections[titles.index(title)] = (title, new)
    else:
        sections.append((title, new))
    out = preamble.rstrip("\n") + "\n\n" + "".join(s if s.endswith("\n\n") else s + "\n" for _, s in sections)
    tmp = doc.with_name(f".{doc.name}.tmp")
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp.write_text(out.rstrip("\n") + "\n", encoding="utf-8")
    os.replace(tmp, doc)
    return doc


def setup_logging(verbose: bool = False) -> None:
    """Log lines with a timestamp on stderr (for the bench scripts' progress)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def run_in_scratch(prefix: str, keep: bool, body: Callable[[Path], str]) -> str:
    """Call ``body`` with a fresh scratch folder, removed afterwards unless ``keep``; returns its result."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return body(work)
    finally:
        if keep:
            logging.getLogger("bench").info("outputs kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)


def publish(title: str, section: str, no_doc: bool, doc: str | Path = BENCH_DOC) -> None:
    """Print the section (``no_doc``) or replace it in the benchmarks document."""
    if no_doc:
        print(f"## {title}\n\n{section}")
    else:
        logging.getLogger("bench").info("wrote section %r of %s", title, write_section(title, section, doc))

