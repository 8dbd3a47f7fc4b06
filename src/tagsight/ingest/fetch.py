"""Polite fetching of remote media (``http://``/``https://``) for ingest, with the web's opt-outs honoured.

One ``Fetcher`` serves a whole ingest run from the main process: a pool of threads shares one
pool of kept-alive HTTP/1.1 connections (``tagsight.ingest.transport``: opened by the standard
library's ``http.client``, TLS verified by ``ssl``'s default context; requests and responses written
and read there), at most ``FetchConfig.threads`` requests in flight and at most
``FetchConfig.per_host`` per host: each host's URLs wait in a queue of their own, worked through
by at most ``per_host`` threads, so no thread waits for a busy host. ``fetch_all`` returns results
in the order of its input, whatever order the answers arrive in, so the dataset built from them
does not depend on timing.

For every URL, in order:

1. the site's opt-outs, looked up once per origin and cached for the run: robots.txt for our
   user agent token (parsed by ``urllib.robotparser``, matched by ``robots_allowed`` as RFC 9309
   says; a 4xx robots.txt allows all, a 5xx or an unreachable one disallows all) and TDM-Rep's ``/.well-known/tdmrep.json`` (the first rule whose
   ``location`` matches the path applies; ``tdm-reservation: 1`` reserves);
2. the request, with timeouts, retries with exponential backoff on connection errors, timeouts,
   429 and 5xx (``Retry-After`` honoured up to ``max_retry_after``; a longer wait is a failure),
   and redirects followed one hop at a time (each hop's site opt-outs checked too) up to
   ``max_redirects``;
3. the response headers: ``X-Robots-Tag`` directives (img2dataset's default set; directives scoped
   to another user agent are ignored), ``tdm-reservation: 1``, the content type, the declared
   length; an opted-out body is never read;
4. the body, streamed and abandoned as soon as it passes the size limit.

Before any request (media, redirect hop, robots.txt, tdmrep.json) the host's addresses are checked:
a name that resolves to a private, loopback, link-local, multicast, reserved or otherwise
non-global address (IPv4 or IPv6, IPv4-mapped included) is refused as ``private_address``, unless
``FetchConfig.allow_private_addresses``. The check is made again on the addresses a connection is
actually opened to (the connection goes to the address checked), so a DNS answer that changes
between the check and the request cannot reach an internal service (through a proxy named by
``HTTP_PROXY``/``HTTPS_PROXY``, which resolves names itself, only the first check applies; the proxy's
own address is the operator's choice and is not checked). robots.txt ``Crawl-delay`` for
our token is honoured per site (requests to it are spaced by the delay); a delay over
``max_crawl_delay`` refuses the site's media as ``crawl_delay_too_long``.

Every failure is an ``ImageRejected`` with a stable reason: ``invalid_url``, ``private_address``, ``fetch_timeout``,
``fetch_error``, ``fetch_failed:<status>``, ``too_many_redirects``, ``unsupported_content_type``,
``file_too_large``, ``media_empty``, ``robots_txt_unreachable``, ``crawl_delay_too_long``, ``optout_robots_txt``,
``optout_x_robots_tag``, ``optout_tdm_reservation``. An opt-out's message names the site, not the URL.
"""

from __future__ import annotations

import collections
import contextlib
import email.utils
import functools
import http.client
import logging
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
import urllib.robotparser
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import urljoin

from tagsight import __version__
from tagsight.ingest.images import ImageRejected
from tagsight.ingest.optouts import DISALLOWED_DIRECTIVES, parse_tdmrep, robots_allowed, tdm_reserved, x_robots_optout
from tagsight.ingest.transport import (BodyTooLarge, Connection, Connections, DeadlinePassed, Key, Response,
                                      resolve_public, split_url)

log = logging.getLogger(__name__)

USER_AGENT_TOKEN = "tagsight"
"""The product token robots.txt groups and scoped ``X-Robots-Tag`` directives are matched against."""

USER_AGENT = (f"tagsight/{__version__} (dataset builder; honours robots.txt for 'tagsight', "
              "X-Robots-Tag noai/noimageai/noindex/noimageindex and TDM-Rep)")
"""The ``User-Agent`` header sent with every request."""

ACCEPTED_CONTENT_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")
"""Content-type prefixes fetched; a response without a content type is decoded and judged by its bytes."""

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: crawlers must parse at least 500 KiB
TDMREP_MAX_BYTES = 256 * 1024
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

T = TypeVar("T")


def is_remote(path: str) -> bool:
    """True for an ``http://`` or ``https://`` media reference."""
    return isinstance(path, str) and path[:8].lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class FetchConfig:
    """How remote media are fetched. Validated at construction; times in seconds."""

    timeout: float = 10.0          # connect, and each read
    total_timeout: float = 60.0    # one whole response, body included
    retries: int = 2               # further attempts after the first
    backoff: float = 0.5           # first retry after backoff, then 2x, 4x, ...
    max_retry_after: float = 30.0  # longest Retry-After honoured; longer is a failure
    max_redirects: int = 5
    threads: int = 16
    per_host: int = 4
    user_agent: str = USER_AGENT
    agent_token: str = USER_AGENT_TOKEN
    disallowed_directives: tuple[str, ...] = DISALLOWED_DIRECTIVES
    robots_txt: bool = True
    tdm_rep: bool = True
    content_types: tuple[str, ...] = ACCEPTED_CONTENT_TYPES
    allow_private_addresses: bool = False  # True lets URLs reach private, loopback, link-local... addresses
    max_crawl_delay: float = 30.0  # longest robots.txt Crawl-delay honoured; a site asking more is refused

    def __post_init__(self) -> None:
        for name in ("timeout", "total_timeout", "backoff", "max_retry_after", "max_crawl_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"FetchConfig.{name} must be a non-negative number, got {value!r}")
        if self.timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("FetchConfig.timeout and total_timeout must be positive")
        for name, low in (("retries", 0), ("max_redirects", 0), ("threads", 1), ("per_host", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"FetchConfig.{name} must be an integer >= {low}, got {value!r}")
        if not isinstance(self.allow_private_addresses, bool):
            raise ValueError(f"FetchConfig.allow_private_addresses must be a bool, got {self.allow_private_addresses!r}")
        if re.search(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]", self.user_agent):
            raise ValueError(f"FetchConfig.user_agent must be one line of Latin-1 text, got {self.user_agent!r}")
        if not self.user_agent.strip() or not re.fullmatch(r"[A-Za-z0-9_.-]+", self.agent_token):
            raise ValueError("FetchConfig.user_agent must be non-empty and agent_token a product token "
                             f"(letters, digits, '_', '.', '-'), got {self.agent_token!r}")
        object.__setattr__(self, "disallowed_directives", tuple(d.strip().lower() for d in self.disallowed_directives))
        object.__setattr__(self, "content_types", tuple(c.strip().lower() for c in self.content_types))

    def content_dict(self) -> dict[str, Any]:
        """The settings that can change what is kept (concurrency and the User-Agent text, which carries the
        tagsight version, do not enter the dataset version; the robots.txt token does)."""
        d = asdict(self)
        for name in ("threads", "per_host", "user_agent"):
            d.pop(name)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


class _Retry(Exception):
    """A failure worth another attempt; ``wait`` is the server's Retry-After, when it gave one."""

    def __init__(self, rejection: ImageRejected, wait: float | None = None) -> None:
        super().__init__(str(rejection))
        self.rejection, self.wait = rejection, wait


@dataclass(frozen=True)
class _Redirect:
    location: str


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or an HTTP date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _host(url: str) -> str:
    """The host (and port) a URL's request goes to, as the per-host limit counts it; "" for an unparsable URL."""
    try:
        return split_url(url).netloc.lower()
    except ValueError:
        return ""


def _origin(url: str) -> str:
    parts = split_url(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def check_url(url: str) -> str:
    """The URL when it is an absolute ``http(s)`` URL with a host; ImageRejected('invalid_url') otherwise."""
    try:
        parts = split_url(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ImageRejected("invalid_url", f"{url!r} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ImageRejected("invalid_url", f"{url!r} is not an http(s) URL with a host")
    return url


class Fetcher:
    """Fetches remote media for one run; thread-safe, with per-origin opt-out caches. Close it when done."""

    def __init__(self, cfg: FetchConfig, max_bytes: int) -> None:
        self.cfg, self.max_bytes = cfg, max_bytes
        self._connections = Connections(cfg.timeout, cfg.threads, cfg.allow_private_addresses,
                                        {"User-Agent": cfg.user_agent, "Accept": "*/*"})
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._origin_locks: dict[str, threading.Lock] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | ImageRejected] = {}
        self._tdm: dict[str, list[tuple[re.Pattern[str], bool]]] = {}
        self._public: dict[str, ImageRejected | None] = {}  # origin -> its address refusal (checked once per run)
        self._next_request: dict[str, float] = {}  # origin -> when its Crawl-delay allows the next request
        self._pool = ThreadPoolExecutor(max_workers=cfg.threads, thread_name_prefix="fetch")  # threads start lazily
        self._queues: dict[str, collections.deque[tuple[str, Future[bytes | ImageRejected]]]] = {}
        self._runners: dict[str, int] = {}  # host -> runners working through its queue (at most per_host)

    def close(self) -> None:
        """Cancel the URLs not started yet, wait for the requests in flight, close the connections."""
        with self._lock:  # first: a runner finding its queue gone stops after its current URL
            for queue in self._queues.values():
                for _, future in queue:
                    future.cancel()
            self._queues.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._connections.close()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- public

    def submit(self, url: str) -> Future[bytes | ImageRejected]:
        """Queue ``url`` behind its host's earlier URLs (first in, first started); the future holds its body or
        rejection. A host's queue is worked through by at most ``per_host`` threads at once, so threads never
        wait for a host's slot while other hosts have work."""
        future: Future[bytes | ImageRejected] = Future()
        host = _host(url)
        with self._lock:
            self._queues.setdefault(host, collections.deque()).append((url, future))
            start = self._runners.get(host, 0) < self.cfg.per_host
            if start:
                self._runners[host] = self._runners.get(host, 0) + 1
        if start:
            self._pool.submit(self._run_host, host)
        return future

    def fetch_all(self, urls: list[str]) -> list[bytes | ImageRejected]:
        """Each URL's body or its rejection, in input order, fetched concurrently."""
        return [future.result() for future in [self.submit(url) for url in urls]]

    def fetch(self, url: str) -> bytes:
        """The body of ``url`` after every check; raises ImageRejected with the reason."""
        current = check_url(url)
        for _ in range(self.cfg.max_redirects + 1):
            self._check_address(current)
            self._check_site(current)
            self._pace(current)
            outcome = self._attempts(current, functools.partial(self._get_media, current))
            if not isinstance(outcome, _Redirect):
                return outcome
            current = check_url(outcome.location)
        raise ImageRejected("too_many_redirects", f"{url!r} redirected more than {self.cfg.max_redirects} times")

    # ------------------------------------------------------------------------- requests

    def _run_host(self, host: str) -> None:
        """Fetch ``host``'s queued URLs one after another until its queue is empty."""
        while True:
            with self._lock:
                queue = self._queues.get(host)
                if not queue:
                    self._runners[host] -= 1
                    return
                url, future = queue.popleft()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._fetch_or_rejection(url))
            except BaseException as exc:  # a bug: the caller sees it, the other URLs still run
                future.set_exception(exc)

    def _fetch_or_rejection(self, url: str) -> bytes | ImageRejected:
        try:
            return self.fetch(url)
        except ImageRejected as exc:
            log.debug("%s: %s (%s)", url, exc.reason, exc)
            return exc

    def _attempts(self, url: str, call: Callable[[], T]) -> T:
        """``call`` under the host's slot, retried with exponential backoff while it raises _Retry."""
        slot = self._slot(_host(url))
        for attempt in range(self.cfg.retries + 1):
            try:
                with slot:
                    return call()
            except _Retry as retry:
                if attempt == self.cfg.retries:
                    raise retry.rejection from None
                delay = self.cfg.backoff * 2 ** attempt if retry.wait is None else retry.wait
                if delay > self.cfg.max_retry_after:
                    raise ImageRejected(retry.rejection.reason, f"{retry.rejection}; the server asked to wait "
                                        f"{delay:.0f}s (more than {self.cfg.max_retry_after:.0f}s)") from None
                log.debug("%s: %s, retry %d in %.2fs", url, retry.rejection.reason, attempt + 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _slot(self, host: str) -> threading.BoundedSemaphore:
        """The semaphore of ``host``'s requests in flight (at most ``per_host``)."""
        slot = self._slots.get(host)
        if slot is None:
            with self._lock:
                slot = self._slots.setdefault(host, threading.BoundedSemaphore(self.cfg.per_host))
        return slot

    @contextlib.contextmanager
    def _stream(self, url: str) -> Iterator[Response]:
        """A GET whose body the caller reads; transport failures (of the request or while reading) become _Retry
        with a named reason. The connection goes back to the pool when the body was read to its end."""
        try:
            conn, key, response = self._send(url)
        except UnicodeError as exc:
            raise ImageRejected("invalid_url", f"{url!r} has a host name that cannot be encoded: {exc}") from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise _transport_failure(url, exc) from None
        try:
            yield response
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            raise _transport_failure(url, exc) from None
        finally:
            if response.isclosed() and not response.will_close:
                self._connections.give_back(key, conn)
            else:
                conn.close()  # a body left unread (an opt-out, a redirect, a refusal) or the server's last answer

    def _send(self, url: str) -> tuple[Connection, Key, Response]:
        """Request ``url`` and read the response head; a kept-alive connection the server closed meanwhile is
        replaced by a new one once, without counting as an attempt."""
        for fresh_retry in (False, True):
            conn, key, head, reused = self._connections.take(url)
            try:
                return conn, key, conn.exchange(head)
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
                conn.close()
                if not reused or fresh_retry:
                    raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")

    def _get_media(self, url: str) -> bytes | _Redirect:
        with self._stream(url) as r:
            if r.status in _REDIRECTS and r.headers.get("location"):
                return _Redirect(urljoin(url, r.headers.get("location")))
            _check_status(url, r)
            self._check_headers(url, r)
            return self._read_body(url, r, self.max_bytes, "file_too_large")

    def _read_body(self, url: str, r: Response, limit: int, too_large: str) -> bytes:
        """The whole body: refused past ``limit`` (a declared length before any byte is read), a fetch_timeout
        to retry past ``total_timeout``, a fetch_error to retry when the connection ends before the body does."""
        if r.length is not None and r.length > limit:
            raise ImageRejected(too_large, f"{url!r} declares {r.length} bytes (max {limit})")
        try:
            body = r.read_body(limit, time.monotonic() + self.cfg.total_timeout)
        except BodyTooLarge:
            raise ImageRejected(too_large, f"{url!r} sent more than {limit} bytes") from None
        except DeadlinePassed:
            raise _Retry(ImageRejected("fetch_timeout", f"{url!r} took more than {self.cfg.total_timeout}s")) from None
        except http.client.IncompleteRead as exc:
            said = f"after {len(exc.partial)} of {r.length} bytes" if r.length is not None else "before the last chunk"
            raise _Retry(ImageRejected("fetch_error", f"{url!r}: the connection closed {said}")) from None
        if not body:
            raise ImageRejected("media_empty", f"{url!r} answered with an empty body")
        return body

    def _check_headers(self, url: str, r: Response) -> None:
        """Opt-outs first (an opted-out body is never read), then the content type."""
        directive = x_robots_optout(r.headers.get_all("x-robots-tag"), self.cfg.agent_token,
                                    self.cfg.disallowed_directives)
        if directive:
            raise ImageRejected("optout_x_robots_tag", f"{_origin(url)} answered X-Robots-Tag {directive}")
        if self.cfg.tdm_rep and r.headers.get("tdm-reservation", "").strip() == "1":
            raise ImageRejected("optout_tdm_reservation", f"{_origin(url)} answered tdm-reservation: 1")
        ctype = r.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype and not ctype.startswith(self.cfg.content_types):
            raise ImageRejected("unsupported_content_type", f"{url!r} is {ctype!r}, not an image type")

    # ------------------------------------------------------------------------- site opt-outs

    def _check_address(self, url: str) -> None:
        """Refuse a URL whose host resolves to a non-global address (once per origin; the connection itself is
        checked again). A name that does not resolve is left to the request, which retries and names it."""
        if self.cfg.allow_private_addresses:
            return
        origin = _origin(url)
        if origin not in self._public:
            parts = split_url(url)
            try:
                resolve_public(parts.hostname or "", parts.port or (443 if parts.scheme.lower() == "https" else 80))
                self._public[origin] = None
            except ImageRejected as exc:
                self._public[origin] = exc
            except (socket.gaierror, UnicodeError):
                return
        refusal = self._public[origin]
        if refusal is not None:
            raise ImageRejected(refusal.reason, f"{url!r}: {refusal}")

    def _pace(self, url: str) -> None:
        """Space requests to a site by its robots.txt Crawl-delay for our token."""
        robots = self._robots.get(_origin(url)) if self.cfg.robots_txt else None
        delay = robots.crawl_delay(self.cfg.agent_token) if isinstance(robots, urllib.robotparser.RobotFileParser) \
            else None
        if not delay:
            return
        if float(delay) > self.cfg.max_crawl_delay:
            raise ImageRejected("crawl_delay_too_long", f"{_origin(url)}/robots.txt asks {delay}s between requests "
                                f"(more than {self.cfg.max_crawl_delay:.0f}s)")
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_request.get(_origin(url), now))
            self._next_request[_origin(url)] = start + float(delay)
        time.sleep(start - now)

    def _check_site(self, url: str) -> None:
        origin = _origin(url)
        if (self.cfg.robots_txt and origin not in self._robots) or (self.cfg.tdm_rep and origin not in self._tdm):
            with self._lock:
                lock = self._origin_locks.setdefault(origin, threading.Lock())
            with lock:  # one lookup per origin; other threads for that origin wait for it
                if self.cfg.robots_txt and origin not in self._robots:
                    self._robots[origin] = self._load_robots(origin)
                if self.cfg.tdm_rep and origin not in self._tdm:
                    self._tdm[origin] = self._load_tdmrep(origin)
        if self.cfg.robots_txt:
            robots = self._robots[origin]
            if isinstance(robots, ImageRejected):
                raise ImageRejected(robots.reason, f"{url!r}: {robots}")
            if not robots_allowed(robots, self.cfg.agent_token, url):
                raise ImageRejected("optout_robots_txt", f"disallowed by {origin}/robots.txt for "
                                    f"{self.cfg.agent_token}")
        if self.cfg.tdm_rep and tdm_reserved(self._tdm[origin], url):
            raise ImageRejected("optout_tdm_reservation", f"reserved by {origin}/.well-known/tdmrep.json")

    def _site_file(self, url: str, limit: int) -> tuple[int, str]:
        """(status, text) of a small site file, redirects followed; retried like media."""
        current = url
        for _ in range(self.cfg.max_redirects + 1):
            status, text = self._attempts(current, functools.partial(self._site_hop, current, limit))
            if status not in _REDIRECTS:
                return status, text
            current = check_url(text)
        return 404, ""

    def _site_hop(self, url: str, limit: int) -> tuple[int, str]:
        """One request: (status, text), (redirect status, absolute location) or (other status, "")."""
        with self._stream(url) as r:
            if r.status in _REDIRECTS and r.headers.get("location"):
                return r.status, urljoin(url, r.headers.get("location"))
            if r.status == 429 or r.status >= 500:
                raise _Retry(ImageRejected(f"fetch_failed:{r.status}", f"{url!r}: HTTP {r.status}"),
                             parse_retry_after(r.headers.get("retry-after")))
            if r.status != 200:
                return r.status, ""
            return 200, self._read_body(url, r, limit, "file_too_large").decode("utf-8", "replace")

    def _load_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | ImageRejected:
        parser = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        try:
            status, text = self._site_file(origin + "/robots.txt", ROBOTS_MAX_BYTES)
        except ImageRejected as exc:  # RFC 9309: unreachable (5xx, network) means complete disallow
            log.info("%s/robots.txt unusable (%s): the site is treated as disallowed", origin, exc.reason)
            return ImageRejected("robots_txt_unreachable", f"{origin}/robots.txt cannot be read ({exc.reason})")
        if status == 200:
            parser.parse(text.splitlines())
        else:  # 4xx: no robots.txt, everything allowed
            parser.parse([])
        return parser

    def _load_tdmrep(self, origin: str) -> list[tuple[re.Pattern[str], bool]]:
        url = origin + "/.well-known/tdmrep.json"
        try:
            status, text = self._site_file(url, TDMREP_MAX_BYTES)
            return parse_tdmrep(text) if status == 200 else []
        except (ImageRejected, ValueError) as exc:
            log.warning("%s cannot be used (%s): no site-wide TDM reservation assumed", url, exc)
            return []


def _transport_failure(url: str, exc: BaseException) -> _Retry:
    """A failed connection, request or read as a retryable rejection: fetch_timeout or fetch_error."""
    if isinstance(exc, TimeoutError):
        return _Retry(ImageRejected("fetch_timeout", f"{url!r}: {type(exc).__name__}"))
    return _Retry(ImageRejected("fetch_error", f"{url!r}: {type(exc).__name__}: {exc}"))


def _check_status(url: str, r: Response) -> None:
    status = r.status
    if status == 429 or status >= 500:
        raise _Retry(ImageRejected(f"fetch_failed:{status}", f"{url!r}: HTTP {status}"),
                     parse_retry_after(r.headers.get("retry-after")))
    if not 200 <= status < 300 or status in (204, 206):
        raise ImageRejected(f"fetch_failed:{status}", f"{url!r}: HTTP {status}")
