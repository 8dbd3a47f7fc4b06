"""The connections fetching opens: kept-alive HTTP/1.1 connections per origin (the standard library's
``http.client``; TLS verified by ``ssl``'s default context), each opened only to an address checked to be global
(``private_address`` otherwise), and the proxies of the environment."""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import select
import socket
import ssl
import threading
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


Key = tuple[str, str, int, str]  # scheme, host, port, proxy ("" for none)
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Connections:
    """Keep-alive HTTP/1.1 connections per origin, shared by the run's threads (one in use by one thread at a
    time). Without ``allow_private_addresses`` a connection opens only to an address checked as it opens. The
    ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` environment is honoured; the proxy's own address is the
    operator's choice and is not checked (the proxy resolves names, so only the per-origin check applies)."""

    def __init__(self, timeout: float, max_idle: int, allow_private_addresses: bool) -> None:
        self.timeout, self.max_idle, self.allow_private_addresses = timeout, max_idle, allow_private_addresses
        self._idle: dict[Key, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context()
        self._proxies = urllib.request.getproxies()

    def take(self, url: str) -> tuple[http.client.HTTPConnection, Key, str, bool]:
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

    def give_back(self, key: Key, conn: http.client.HTTPConnection) -> None:
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

    def _idle_connection(self, key: Key) -> http.client.HTTPConnection | None:
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

    def _new(self, key: Key) -> http.client.HTTPConnection:
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
        return conn


_PATH_SAFE = "/%:@!$&'()*+,;=~-._[]"  # kept as they are in a request target; the rest is percent-encoded
