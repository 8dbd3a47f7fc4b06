"""Polite fetching of remote media (``http://``/``https://``) for ingest, with the web's opt-outs honoured.

One ``Fetcher`` serves a whole ingest run from the main process: a pool of threads shares one
pool of kept-alive HTTP/1.1 connections (the standard library's ``http.client``; TLS verified by
``ssl``'s default context), at most ``FetchConfig.threads`` requests in flight and at most
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
import ipaddress
import json
import logging
import re
import select
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
import urllib.robotparser
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

from tagsight import __version__
from tagsight.ingest.images import ImageRejected

log = logging.getLogger(__name__)

USER_AGENT_TOKEN = "tagsight"
"""The product token robots.txt groups and scoped ``X-Robots-Tag`` directives are matched against."""

USER_AGENT = (f"tagsight/{__version__} (dataset builder; honours robots.txt for 'tagsight', "
              "X-Robots-Tag noai/noimageai/noindex/noimageindex and TDM-Rep)")
"""The ``User-Agent`` header sent with every request."""

DISALLOWED_DIRECTIVES = ("noai", "noimageai", "noindex", "noimageindex")
"""img2dataset's default ``--disallowed_header_directives``."""

ACCEPTED_CONTENT_TYPES = ("image/", "application/octet-stream", "binary/octet-stream")
"""Content-type prefixes fetched; a response without a content type is decoded and judged by its bytes."""

ROBOTS_MAX_BYTES = 512 * 1024  # RFC 9309: crawlers must parse at least 500 KiB
TDMREP_MAX_BYTES = 256 * 1024
_VALUED_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_SCOPED = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*:(.*)$")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_READ_BYTES = 64 * 1024

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


def x_robots_optout(values: list[str], agent_token: str, disallowed: tuple[str, ...]) -> str | None:
    """The first disallowed directive in ``X-Robots-Tag`` values that applies to ``agent_token``, else None.

    A value ``agent: directives`` applies only to that agent; a bare list applies to all.
    """
    for value in values:
        scoped = _SCOPED.match(value)
        if scoped and scoped.group(1).lower() not in _VALUED_DIRECTIVES:
            if scoped.group(1).lower() != agent_token.lower():
                continue
            value = scoped.group(2)
        for directive in value.split(","):
            if directive.strip().lower() in disallowed:
                return directive.strip().lower()
    return None


def _location_regex(location: str) -> re.Pattern[str]:
    """A TDM-Rep/robots.txt path pattern (``*`` any characters, a final ``$`` the end) as a regex."""
    anchored = location.endswith("$")
    body = location[:-1] if anchored else location
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in body) + ("$" if anchored else ""))


def parse_tdmrep(text: str) -> list[tuple[re.Pattern[str], bool]]:
    """``/.well-known/tdmrep.json`` as ordered (location pattern, reserved) rules; ValueError when malformed."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("tdmrep.json must be a JSON array of rules")
    rules = []
    for rule in data:
        if not isinstance(rule, dict) or not isinstance(rule.get("location"), str):
            raise ValueError(f"tdmrep.json rule {rule!r} has no location")
        reserved = rule.get("tdm-reservation")
        rules.append((_location_regex(rule["location"]), str(reserved).strip() == "1"))
    return rules


def tdm_reserved(rules: list[tuple[re.Pattern[str], bool]], url: str) -> bool:
    """Whether the first rule matching the URL's path (and query) reserves TDM rights."""
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    for pattern, reserved in rules:
        if pattern.match(path):
            return reserved
    return False


class _RobotRule(Protocol):
    path: str
    allowance: bool


class _RobotGroup(Protocol):
    useragents: list[str]
    rulelines: list[_RobotRule]


@functools.lru_cache(maxsize=256)
def _robot_rules(parser: urllib.robotparser.RobotFileParser, token: str) -> list[tuple[int, bool, re.Pattern[str]]]:
    """The rules of the groups for ``token`` (else ``*``) as (pattern length, allowance, compiled pattern), once per
    parsed robots.txt (a site's robots.txt is matched against every URL of that site)."""
    entries: list[_RobotGroup] = parser.entries  # type: ignore[attr-defined]  # typeshed omits RobotFileParser.entries
    default: _RobotGroup | None = parser.default_entry  # type: ignore[attr-defined]  # nor .default_entry
    rules = [line for entry in entries if any(ua.lower() == token for ua in entry.useragents)
             for line in entry.rulelines]
    if not rules and default is not None:
        rules = list(default.rulelines)
    out = []
    for line in rules:
        pattern = line.path.replace("%2A", "*")  # robotparser stores rule paths percent-quoted
        pattern = pattern[:-3] + "$" if pattern.endswith("%24") else pattern
        if pattern:  # an empty Disallow allows everything: it matches nothing
            out.append((len(pattern), line.allowance, _location_regex(pattern)))
    return out


def robots_allowed(parser: urllib.robotparser.RobotFileParser, agent_token: str, url: str) -> bool:
    """RFC 9309 matching over the groups ``urllib.robotparser`` parsed: the groups naming ``agent_token``
    (merged; else the ``*`` group), ``*`` and a final ``$`` in rule paths, the longest matching rule
    wins and ``Allow`` wins a tie. (``RobotFileParser.can_fetch`` takes the first match and treats
    ``*`` literally, which would let ``Disallow: /*.jpg$`` through.) The rules are compiled once per parser:
    parse a robots.txt into a new parser rather than re-parsing one already matched against."""
    parts = urlsplit(url)
    path = urllib.parse.quote(urllib.parse.unquote(parts.path or "/")) + (f"?{parts.query}" if parts.query else "")
    best: tuple[int, bool] | None = None
    for length, allowance, regex in _robot_rules(parser, agent_token.lower()):
        key = (length, allowance)
        if (best is None or key > best) and regex.match(path):
            best = key
    return True if best is None else best[1]


_ADDRESS_KINDS = (("is_unspecified", "unspecified"), ("is_loopback", "loopback"), ("is_link_local", "link-local"),
                  ("is_multicast", "multicast"), ("is_reserved", "reserved"), ("is_private", "private"))
PRIVATE_ADDRESS = "private_address"


def address_refusal(address: str) -> str | None:
    """Why ``address`` (an IPv4 or IPv6 literal) must not be fetched from: 'loopback', 'private', 'link-local',
    'multicast', 'reserved', 'unspecified', 'non-global'; None for a global unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone index is not part of the address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            ip = embedded
    for flag, kind in _ADDRESS_KINDS:
        if getattr(ip, flag):
            return kind
    return None if ip.is_global else "non-global"


def resolve_public(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, every one of them global; ImageRejected('private_address') naming the
    first that is not; socket.gaierror when the name does not resolve."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        kind = address_refusal(address)
        if kind is not None:
            raise ImageRejected(PRIVATE_ADDRESS, f"{host} resolves to {address}, a {kind} address "
                                "(--allow-private-addresses lets such URLs through)")
    return addresses


Opener = Callable[[tuple[str, int], "float | None", Any], socket.socket]


def _public_socket(address: tuple[str, int], timeout: float | None, source_address: Any = None) -> socket.socket:
    """A TCP connection to a global address of ``address``'s host, to the very address checked (no second lookup):
    ImageRejected('private_address') for a host with a non-global address, OSError when none can be reached."""
    host, port = address
    try:
        addresses = resolve_public(host, port)
    except socket.gaierror as exc:
        raise OSError(f"{host}: {exc}") from None
    error: OSError = OSError(f"{host}: no address")
    for checked in addresses:
        try:
            return socket.create_connection((checked, port), timeout, source_address)
        except OSError as exc:
            error = exc
    raise error


class _HTTPConnection(http.client.HTTPConnection):
    """``http.client``'s connection, its socket opened by ``opener`` (the address guard, or a plain connect)."""

    def __init__(self, host: str, port: int, timeout: float, opener: Opener) -> None:
        super().__init__(host, port, timeout=timeout)
        self._create_connection = opener  # what HTTPConnection.connect opens its socket with


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, timeout: float, opener: Opener, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._create_connection = opener


_Key = tuple[str, str, int, str]  # scheme, host, port, proxy ("" for none)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class _Connections:
    """Keep-alive HTTP/1.1 connections per origin, shared by the run's threads (one in use by one thread at a
    time). Without ``allow_private_addresses`` a connection opens only to an address checked as it opens. The
    ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` environment is honoured; the proxy's own address is the
    operator's choice and is not checked (the proxy resolves names, so only the per-origin check applies)."""

    def __init__(self, cfg: FetchConfig) -> None:
        self.cfg = cfg
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()
        self._proxies = urllib.request.getproxies()

    def take(self, url: str) -> tuple[http.client.HTTPConnection, _Key, str, bool]:
        """(connection, its pool key, the request target, whether it is a reused one) for ``url``."""
        parts = urlsplit(url)
        scheme, host = parts.scheme.lower(), (parts.hostname or "").encode("idna").decode("ascii")
        port = parts.port or _DEFAULT_PORTS[scheme]
        target = urllib.parse.quote(parts.path or "/", safe=_PATH_SAFE) + \
            (f"?{urllib.parse.quote(parts.query, safe=_PATH_SAFE)}" if parts.query else "")
        proxy = self._proxy(scheme, host, port)
        key = (scheme, host, port, proxy)
        if proxy and scheme == "http":
            target = f"http://{parts.netloc}{target}"  # a proxy is asked for the absolute URL
        conn = self._idle_connection(key)
        return (conn, key, target, True) if conn is not None else (self._new(key), key, target, False)

    def give_back(self, key: _Key, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.cfg.threads:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _idle_connection(self, key: _Key) -> http.client.HTTPConnection | None:
        """An idle connection of ``key`` whose server has not closed it (nothing readable on it), else None."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                conn = idle.pop()
            if conn.sock is not None and not select.select([conn.sock], [], [], 0)[0]:
                return conn
            conn.close()  # closed by the server (or it sent something unasked): not reusable

    def _proxy(self, scheme: str, host: str, port: int) -> str:
        """The proxy for this origin, "" for none: none is asked for this machine's own (loopback) addresses."""
        proxy = self._proxies.get(scheme, "")
        if not proxy or host == "localhost" or urllib.request.proxy_bypass(f"{host}:{port}"):
            return ""
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(host).is_loopback:
                return ""
        return proxy

    def _new(self, key: _Key) -> http.client.HTTPConnection:
        scheme, host, port, proxy = key
        opener: Opener = socket.create_connection if self.cfg.allow_private_addresses or proxy else _public_socket
        if proxy:
            p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            conn_host, conn_port = p.hostname or "", p.port or 8080
        else:
            conn_host, conn_port = host, port
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = _HTTPSConnection(conn_host, conn_port, self.cfg.timeout, opener, self._tls)
            if proxy:
                conn.set_tunnel(host, port)
        else:
            conn = _HTTPConnection(conn_host, conn_port, self.cfg.timeout, opener)
        return conn


_PATH_SAFE = "/%:@!$&'()*+,;=~-._[]"  # kept as they are in a request target; the rest is percent-encoded


def _host(url: str) -> str:
    """The host (and port) a URL's request goes to, as the per-host limit counts it; "" for an unparsable URL."""
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def check_url(url: str) -> str:
    """The URL when it is an absolute ``http(s)`` URL with a host; ImageRejected('invalid_url') otherwise."""
    try:
        parts = urlsplit(url)
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
        self._connections = _Connections(cfg)
        self._headers = {"User-Agent": cfg.user_agent, "Accept": "*/*"}
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
        host = _host(url)
        for attempt in range(self.cfg.retries + 1):
            try:
                with self._slot(host):
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

    @contextlib.contextmanager
    def _slot(self, host: str) -> Iterator[None]:
        with self._lock:
            slot = self._slots.setdefault(host, threading.BoundedSemaphore(self.cfg.per_host))
        with slot:
            yield

    @contextlib.contextmanager
    def _stream(self, url: str) -> Iterator[http.client.HTTPResponse]:
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

    def _send(self, url: str) -> tuple[http.client.HTTPConnection, _Key, http.client.HTTPResponse]:
        """Request ``url`` and read the response head; a kept-alive connection the server closed meanwhile is
        replaced by a new one once, without counting as an attempt."""
        for fresh_retry in (False, True):
            conn, key, target, reused = self._connections.take(url)
            try:
                conn.request("GET", target, headers=self._headers)
                return conn, key, conn.getresponse()
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
                return _Redirect(urljoin(url, r.headers["location"]))
            _check_status(url, r)
            self._check_headers(url, r)
            return self._read_body(url, r, self.max_bytes, "file_too_large")

    def _read_body(self, url: str, r: http.client.HTTPResponse, limit: int, too_large: str) -> bytes:
        declared = r.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ImageRejected(too_large, f"{url!r} declares {declared} bytes (max {limit})")
        parts: list[bytes] = []
        total, deadline = 0, time.monotonic() + self.cfg.total_timeout
        while block := r.read1(_READ_BYTES):
            total += len(block)
            if total > limit:
                raise ImageRejected(too_large, f"{url!r} sent more than {limit} bytes")
            if time.monotonic() > deadline:
                raise _Retry(ImageRejected("fetch_timeout", f"{url!r} took more than {self.cfg.total_timeout}s"))
            parts.append(block)
        if r.length == 0 and not r.isclosed():
            r.read()  # read1 stops at the declared length without marking the response done: mark it, to reuse
        if declared.isdigit() and not r.chunked and total < int(declared):  # http.client does not raise for it
            raise _Retry(ImageRejected("fetch_error", f"{url!r}: the connection closed after {total} of "
                                       f"{declared} bytes"))
        if not total:
            raise ImageRejected("media_empty", f"{url!r} answered with an empty body")
        return b"".join(parts)

    def _check_headers(self, url: str, r: http.client.HTTPResponse) -> None:
        """Opt-outs first (an opted-out body is never read), then the content type."""
        directive = x_robots_optout(r.headers.get_all("x-robots-tag", []), self.cfg.agent_token,
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
            parts = urlsplit(url)
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
                return r.status, urljoin(url, r.headers["location"])
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


def _check_status(url: str, r: http.client.HTTPResponse) -> None:
    status = r.status
    if status == 429 or status >= 500:
        raise _Retry(ImageRejected(f"fetch_failed:{status}", f"{url!r}: HTTP {status}"),
                     parse_retry_after(r.headers.get("retry-after")))
    if not 200 <= status < 300 or status in (204, 206):
        raise ImageRejected(f"fetch_failed:{status}", f"{url!r}: HTTP {status}")
