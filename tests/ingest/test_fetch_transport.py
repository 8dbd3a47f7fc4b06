"""The fetcher's HTTP/1.1 transport: kept-alive connections reused, ones the server dropped replaced, truncated
bodies refused, a configured proxy used, and a host's URLs worked through by at most per_host threads."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tagsight.ingest.fetch import FetchConfig, Fetcher
from tagsight.ingest.images import ImageRejected
from tests.ingest.webserver import jpeg

OPEN = FetchConfig(allow_private_addresses=True, timeout=2.0, total_timeout=4.0, retries=0, backoff=0.01,
                   robots_txt=False, tdm_rep=False)


class Server:
    """An HTTP/1.1 server on 127.0.0.1: ``mode`` keepalive (answers and keeps the connection), drop (closes the
    connection after each answer without saying so) or truncated (declares 1000 bytes, sends 10, closes)."""

    def __init__(self, mode: str = "keepalive", tls: tuple[str, str] | None = None) -> None:
        self.connections, self.paths, self.threads = 0, [], set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.connections += 1

            def do_GET(self) -> None:  # http.server's method name
                server.paths.append(self.path)
                body = jpeg(len(server.paths))
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(1000 if mode == "truncated" else len(body)))
                self.end_headers()
                self.wfile.write(body[:10] if mode == "truncated" else body)
                self.close_connection = mode != "keepalive"

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.scheme = "https" if tls else "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}{path}"


def test_one_kept_alive_connection_serves_a_host_one_request_after_another():
    with Server() as server, Fetcher(OPEN, 100_000) as f:
        got = [f.fetch(server.url(f"/{n}.jpg")) for n in range(5)]
    assert got == [jpeg(n) for n in range(1, 6)] and server.connections == 1


def test_a_connection_the_server_dropped_is_replaced_without_failing_or_asking_twice():
    with Server("drop") as server, Fetcher(OPEN, 100_000) as f:
        got = [f.fetch(server.url(f"/{n}.jpg")) for n in range(4)]
    assert got == [jpeg(n) for n in range(1, 5)]
    assert server.paths == [f"/{n}.jpg" for n in range(4)] and server.connections == 4


def test_a_body_shorter_than_its_declared_length_is_a_fetch_error_not_a_short_image():
    with Server("truncated") as server, Fetcher(OPEN, 100_000) as f, pytest.raises(ImageRejected) as info:
        f.fetch(server.url("/a.jpg"))
    assert info.value.reason == "fetch_error" and "10 of 1000 bytes" in str(info.value)


def test_an_http_proxy_from_the_environment_is_asked_for_the_absolute_url(monkeypatch):
    with Server() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url(""))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        cfg = FetchConfig(timeout=2.0, retries=0, robots_txt=False, tdm_rep=False)  # the address guard on
        with Fetcher(cfg, 100_000) as f:
            assert f.fetch("http://photos.invalid/a.jpg?x=1") == jpeg(1)
        with Server() as site, Fetcher(OPEN, 100_000) as f:  # this machine's own addresses are never proxied
            assert f.fetch(site.url("/b.jpg")) == jpeg(1) and site.paths == ["/b.jpg"]
    assert proxy.paths == ["http://photos.invalid/a.jpg?x=1"]


def test_a_hosts_urls_take_at_most_per_host_threads_and_a_failing_url_does_not_stop_the_others(monkeypatch):
    cfg = FetchConfig(allow_private_addresses=True, timeout=2.0, retries=0, threads=8, per_host=2, robots_txt=False,
                      tdm_rep=False)
    real, used = Fetcher.fetch, set()

    def fetch(self, url):
        used.add(threading.current_thread().name)
        if url.endswith("/3.jpg"):
            raise RuntimeError("a bug")
        return real(self, url)

    monkeypatch.setattr(Fetcher, "fetch", fetch)
    with Server() as server, Fetcher(cfg, 100_000) as f:
        futures = [f.submit(server.url(f"/{n}.jpg")) for n in range(8)]
        with pytest.raises(RuntimeError, match="a bug"):
            futures[3].result()
        assert all(isinstance(fut.result(), bytes) for i, fut in enumerate(futures) if i != 3)
    assert len(used) <= 2 and server.connections <= 2


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 (openssl's command line), as (cert file, key file)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_https_is_verified_refused_for_an_unknown_authority_and_kept_alive_once_trusted(certificate, monkeypatch):
    with Server(tls=certificate) as server:
        with Fetcher(OPEN, 100_000) as f, pytest.raises(ImageRejected) as info:
            f.fetch(server.url("/a.jpg"))
        assert info.value.reason == "fetch_error" and "CERTIFICATE_VERIFY_FAILED" in str(info.value)
        assert server.paths == []  # nothing was asked over an unverified connection
        real = ssl.create_default_context
        monkeypatch.setattr(ssl, "create_default_context", lambda: real(cafile=certificate[0]))
        with Fetcher(OPEN, 100_000) as f:
            got = [f.fetch(server.url(f"/{n}.jpg")) for n in range(3)]
    assert got == [jpeg(n) for n in range(1, 4)] and server.connections == 1  # kept alive (the refused handshake
    # never reached a request handler)


def test_closing_cancels_the_urls_not_started_instead_of_fetching_them_all():
    cfg = FetchConfig(allow_private_addresses=True, timeout=2.0, retries=0, per_host=1, robots_txt=False,
                      tdm_rep=False)
    with Server() as server:
        f = Fetcher(cfg, 100_000)
        futures = [f.submit(server.url(f"/{n}.jpg")) for n in range(200)]
        futures[0].result()
        f.close()
        assert sum(fut.cancelled() for fut in futures) > 150 and len(server.paths) < 50
        assert all(fut.done() for fut in futures)
