"""The connections fetching opens: kept-alive HTTP/1.1 connections per origin, each opened only to an address
checked to be global (``private_address`` otherwise), and the proxies of the environment.

A connection is opened by the standard library's ``http.client`` (the address guard, TLS verified by ``ssl``'s
default context, a proxy's CONNECT tunnel); requests and responses on it are written and read here
(``Connection.exchange``): the request head in one write, the response head parsed from one buffer, a body of
declared length read straight into a buffer of that size. ``http.client`` parses every response head with the
``email`` package and reads a body in blocks; on kept-alive connections to a fast server that was most of the
CPU a fetch cost. What is read is what ``http.client`` accepts: status line ``HTTP/x.y NNN reason``, headers
(folded lines joined, at most ``MAX_HEADERS`` of them in at most ``MAX_HEAD_BYTES``), 1xx answers skipped, bodies
framed by ``Transfer-Encoding: chunked``, ``Content-Length`` or the end of the connection, and a connection kept
only when the server keeps it (HTTP/1.1 without ``Connection: close``, HTTP/1.0 with ``keep-alive``)."""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import re
import select
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Callable
from urllib.parse import urlsplit

from tagsight.ingest.images import ImageRejected

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


MAX_HEAD_BYTES = 64 * 1024  # a response head (status line and headers) larger than this is refused
MAX_HEADERS = 100           # as http.client: more header fields than this are refused
_RECV_BYTES = 64 * 1024
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_LINE_END = re.compile(r"\r?\n")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


class BodyTooLarge(Exception):
    """A body that went past the caller's limit while it was read (the rest is left unread)."""


class DeadlinePassed(Exception):
    """A body still arriving when the caller's deadline passed."""


class Headers:
    """A response's header fields by lower-cased name; a repeated field keeps every value, in order."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        """The first value of ``name`` (any case), else ``default``."""
        values = self._fields.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` (any case), in the order received."""
        return list(self._fields.get(name.lower(), ()))


def parse_head(head: bytes) -> tuple[str, int, Headers]:
    """(HTTP version, status, headers) of a response head without its blank line; http.client.BadStatusLine
    for a status line that is not ``HTTP/x.y NNN [reason]``, HTTPException for more than MAX_HEADERS fields.
    Folded lines continue the field above; a line without a colon is skipped."""
    lines = _LINE_END.split(head.decode("iso-8859-1"))
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or len(parts[1]) != 3 or not parts[1].isdigit() \
            or int(parts[1]) < 100:
        raise http.client.BadStatusLine(lines[0])
    fields: dict[str, list[str]] = {}
    values: list[str] | None = None
    count = 0
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if values is not None:
                values[-1] = f"{values[-1]} {line.strip()}".strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        count += 1
        if count > MAX_HEADERS:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
        values = fields.setdefault(name.strip().lower(), [])
        values.append(value.strip())
    return parts[0], int(parts[1]), Headers(fields)


class Response:
    """A response whose head has been read; its body is read once, whole, by ``read_body``. ``will_close``: the
    connection cannot serve another request after it; ``isclosed()``: the body has been read to its end."""

    def __init__(self, conn: "Connection", version: str, status: int, headers: Headers) -> None:
        self.status, self.headers, self._conn = status, headers, conn
        tokens = {t.strip().lower() for v in headers.get_all("connection") for t in v.split(",")}
        self.will_close = "close" in tokens if version == "HTTP/1.1" else "keep-alive" not in tokens
        self.chunked = headers.get("transfer-encoding").strip().lower() == "chunked"
        self.length: int | None = None  # the declared length; None for chunked or read-to-close bodies
        if status in (204, 304) or status < 200:
            self.length = 0
        elif not self.chunked:
            declared = headers.get("content-length").strip()
            self.length = int(declared) if declared.isdigit() else None
        if (self.length is None and not self.chunked) or status < 200:
            self.will_close = True  # the body ends when the connection does; a 101 switched it to another protocol
        self._done = self.length == 0

    def isclosed(self) -> bool:
        return self._done

    def read_body(self, limit: int, deadline: float) -> bytes:
        """The whole body, de-chunked: BodyTooLarge past ``limit`` bytes, DeadlinePassed once the monotonic
        clock passes ``deadline``, http.client.IncompleteRead when the connection ends before the body does,
        HTTPException for a malformed chunk; socket timeouts and errors propagate."""
        if self.chunked:
            body = self._read_chunked(limit, deadline)
        elif self.length is not None:
            if self.length > limit:
                raise BodyTooLarge(f"{self.length} bytes declared")
            body = self._conn.read_exactly(self.length, deadline)
        else:
            body = self._conn.read_to_end(limit, deadline)
        self._done = True
        return body

    def _read_chunked(self, limit: int, deadline: float) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_field = self._conn.read_line(deadline).split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_field):
                raise http.client.HTTPException(f"bad chunk size {size_field[:20]!r}")
            size = int(size_field, 16)
            if not size:
                break
            total += size
            if total > limit:
                raise BodyTooLarge(f"more than {limit} bytes")
            parts.append(self._conn.read_exactly(size, deadline))
            if self._conn.read_line(deadline):
                raise http.client.HTTPException("a chunk longer than its size")
        for _ in range(MAX_HEADERS + 1):  # trailer fields, then the blank line
            if not self._conn.read_line(deadline):
                return b"".join(parts)
        raise http.client.HTTPException(f"got more than {MAX_HEADERS} trailer fields")


class Connection:
    """A kept-alive connection: its socket opened by ``http.client`` on first use (``opener``'s address guard,
    TLS, a proxy's tunnel); requests written and responses read here, through one receive buffer."""

    def __init__(self, conn: http.client.HTTPConnection) -> None:
        self._conn = conn
        self._buf = bytearray()

    def close(self) -> None:
        self._conn.close()
        self._buf.clear()

    def reusable(self) -> bool:
        """Open, with nothing left unread: no bytes past the last response, none (an early close, unasked
        data) waiting on the socket."""
        sock = self._conn.sock
        return sock is not None and not self._buf and not select.select([sock], [], [], 0)[0]

    def exchange(self, head: bytes) -> Response:
        """Send a request ``head`` (a GET, no body) and read the response head, 1xx answers skipped;
        http.client.RemoteDisconnected when the connection ends before any byte of an answer."""
        if self._conn.sock is None:
            self._conn.connect()
        self._sock().sendall(head)
        while True:
            response = Response(self, *parse_head(self._read_head()))
            if response.status >= 200 or response.status == 101:
                return response

    def _sock(self) -> socket.socket:
        sock = self._conn.sock
        if sock is None:
            raise http.client.NotConnected("the connection is closed")
        return sock

    def _fill(self) -> bool:
        """Receive more into the buffer; False when the connection has ended."""
        data = self._sock().recv(_RECV_BYTES)
        self._buf += data
        return bool(data)

    def _read_head(self) -> bytes:
        searched = 0
        while not (end := _HEAD_END.search(self._buf, max(0, searched - 3))):
            if len(self._buf) > MAX_HEAD_BYTES:
                raise http.client.HTTPException(f"response head over {MAX_HEAD_BYTES} bytes")
            searched = len(self._buf)
            if not self._fill():
                if not self._buf:
                    raise http.client.RemoteDisconnected("the server closed the connection without an answer")
                raise http.client.IncompleteRead(bytes(self._buf))
        if end.start() > MAX_HEAD_BYTES:
            raise http.client.HTTPException(f"response head over {MAX_HEAD_BYTES} bytes")
        head = bytes(self._buf[:end.start()])
        del self._buf[:end.end()]
        return head

    def read_line(self, deadline: float) -> bytes:
        """The next line, without its line end (a chunk size, a trailer field)."""
        searched = 0
        while (end := self._buf.find(b"\n", searched)) < 0:
            if len(self._buf) > MAX_HEAD_BYTES:
                raise http.client.HTTPException(f"a line over {MAX_HEAD_BYTES} bytes")
            searched = len(self._buf)
            if not self._fill():
                raise http.client.IncompleteRead(bytes(self._buf))
            _check_deadline(deadline)
        line = bytes(self._buf[:end]).rstrip(b"\r")
        del self._buf[:end + 1]
        return line

    def read_exactly(self, n: int, deadline: float) -> bytes:
        """``n`` bytes, received straight into a buffer of that size."""
        out = bytearray(n)
        view = memoryview(out)
        got = min(n, len(self._buf))
        view[:got] = self._buf[:got]
        del self._buf[:got]
        sock = self._sock()
        while got < n:
            k = sock.recv_into(view[got:])
            if not k:
                raise http.client.IncompleteRead(bytes(out[:got]), n - got)
            got += k
            _check_deadline(deadline)
        return bytes(out)

    def read_to_end(self, limit: int, deadline: float) -> bytes:
        """Everything until the server closes the connection (a body without a declared length)."""
        parts, total = [bytes(self._buf)], len(self._buf)
        self._buf.clear()
        sock = self._sock()
        while True:
            if total > limit:
                raise BodyTooLarge(f"more than {limit} bytes")
            data = sock.recv(_RECV_BYTES)
            if not data:
                return b"".join(parts)
            parts.append(data)
            total += len(data)
            _check_deadline(deadline)


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise DeadlinePassed()


def request_head(target: str, host: str, fields: bytes) -> bytes:
    """A GET request's head: the request line, ``Host``, ``Accept-Encoding: identity`` (as http.client sends),
    then ``fields`` (already encoded ``Name: value\\r\\n`` lines). ``http.client.InvalidURL`` for a target or
    host with whitespace or control characters."""
    if _UNSAFE.search(target) or _UNSAFE.search(host):
        raise http.client.InvalidURL(f"URL can't contain control characters or spaces: {target!r} on {host!r}")
    return b"GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: identity\r\n%s\r\n" % (
        target.encode("ascii"), host.encode("ascii"), fields)


def header_fields(headers: dict[str, str]) -> bytes:
    """``Name: value`` lines, latin-1 encoded; ValueError for a name or value that would break the head."""
    out = []
    for name, value in headers.items():
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) or _UNSAFE_VALUE.search(value):
            raise ValueError(f"header {name!r}: {value!r} cannot be sent")
        out.append(f"{name}: {value}\r\n".encode("latin-1"))
    return b"".join(out)


_UNSAFE = re.compile(r"[\x00-\x20\x7f]")
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]|[^\x00-\xff]")


Key = tuple[str, str, int, str]  # scheme, host, port, proxy ("" for none)


@functools.lru_cache(maxsize=8192)
def split_url(url: str) -> urllib.parse.SplitResult:
    """``urlsplit(url)``, remembered for the URLs in flight: a URL is split by every check on its way (its site,
    its host's limit, its connection), and the standard library remembers only the last 128."""
    return urlsplit(url)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Connections:
    """Keep-alive HTTP/1.1 connections per origin, shared by the run's threads (one in use by one thread at a
    time). Without ``allow_private_addresses`` a connection opens only to an address checked as it opens. The
    ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` environment is honoured; the proxy's own address is the
    operator's choice and is not checked (the proxy resolves names, so only the per-origin check applies)."""

    def __init__(self, timeout: float, max_idle: int, allow_private_addresses: bool,
                 headers: dict[str, str] | None = None) -> None:
        self.timeout, self.max_idle, self.allow_private_addresses = timeout, max_idle, allow_private_addresses
        self._fields = header_fields(headers or {})  # sent with every request, after Host and Accept-Encoding
        self._idle: dict[Key, list[Connection]] = {}
        self._routes: dict[tuple[str, str], tuple[Key, str, str]] = {}  # (scheme, netloc) as written -> _route
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()
        self._proxies = urllib.request.getproxies()

    def take(self, url: str) -> tuple[Connection, Key, bytes, bool]:
        """(connection, its pool key, the request head for ``url``, whether the connection is a reused one);
        http.client.InvalidURL for a URL whose target or host cannot go in a request head."""
        parts = split_url(url)
        key, prefix, host_field = self._route(parts)
        target = prefix + _quoted(parts.path or "/") + (f"?{_quoted(parts.query)}" if parts.query else "")
        head = request_head(target, host_field, self._fields)
        conn = self._idle_connection(key)
        return (conn, key, head, True) if conn is not None else (self._new(key), key, head, False)

    def _route(self, parts: urllib.parse.SplitResult) -> tuple[Key, str, str]:
        """(pool key, what goes before the path in the request target, the Host field) of a URL's scheme and
        host, worked out once per run for each (the IDNA encoding, the port, the proxy environment)."""
        route = self._routes.get((parts.scheme, parts.netloc))
        if route is None:
            scheme, host = parts.scheme.lower(), (parts.hostname or "").encode("idna").decode("ascii")
            port = parts.port or _DEFAULT_PORTS[scheme]
            proxy = self._proxy(scheme, host, port)
            prefix = f"http://{parts.netloc}" if proxy and scheme == "http" else ""  # a proxy gets absolute URLs
            route = ((scheme, host, port, proxy), prefix, _host_field(host, port, scheme))
            self._routes[(parts.scheme, parts.netloc)] = route
        return route

    def give_back(self, key: Key, conn: Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if len(idle) < self.max_idle:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def _idle_connection(self, key: Key) -> Connection | None:
        """An idle connection of ``key`` whose server has not closed it (nothing readable on it), else None."""
        while True:
            with self._lock:
                idle = self._idle.get(key)
                if not idle:
                    return None
                conn = idle.pop()
            if conn.reusable():
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

    def _new(self, key: Key) -> Connection:
        scheme, host, port, proxy = key
        opener: Opener = socket.create_connection if self.allow_private_addresses or proxy else _public_socket
        if proxy:
            p = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            conn_host, conn_port = p.hostname or "", p.port or 8080
        else:
            conn_host, conn_port = host, port
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = _HTTPSConnection(conn_host, conn_port, self.timeout, opener, self._tls)
            if proxy:
                conn.set_tunnel(host, port)
        else:
            conn = _HTTPConnection(conn_host, conn_port, self.timeout, opener)
        return Connection(conn)


def _host_field(host: str, port: int, scheme: str) -> str:
    """The ``Host`` header's value, as http.client writes it: an IPv6 literal in brackets, a default port left out."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port == _DEFAULT_PORTS[scheme] else f"{shown}:{port}"


_PATH_SAFE = "/%:@!$&'()*+,;=~-._[]"  # kept as they are in a request target; the rest is percent-encoded
_ALL_SAFE = re.compile(r"[A-Za-z0-9/%:@!$&'()*+,;=~._\[\]-]*")


def _quoted(text: str) -> str:
    """``text`` percent-encoded for a request target (most URLs need nothing encoded: then it is as it was)."""
    return text if _ALL_SAFE.fullmatch(text) else urllib.parse.quote(text, safe=_PATH_SAFE)
