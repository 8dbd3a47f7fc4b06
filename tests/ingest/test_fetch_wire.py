"""What the fetcher reads off the wire (``tagsight.ingest.transport``): response heads parsed as http.client
parses them, bodies framed by chunks, length or the connection's end, and a connection kept only when the
server keeps it and nothing was left unread on it. A raw socket server answers each request with the next of
a list of canned byte strings."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from tagsight.ingest.fetch import FetchConfig, Fetcher
from tagsight.ingest.images import ImageRejected
from tagsight.ingest.transport import Connections, header_fields, parse_head, request_head

OPEN = FetchConfig(allow_private_addresses=True, timeout=2.0, total_timeout=4.0, retries=0, backoff=0.01,
                   robots_txt=False, tdm_rep=False)
BODY = b"\xff\xd8 not really a jpeg, but bytes all the same \xff\xd9"


class RawServer:
    """127.0.0.1 server: each request (head read up to its blank line) gets the next of ``answers``; after an
    answer in ``closing`` (by index) the connection is closed. Records the request heads and connections."""

    def __init__(self, answers: list[bytes], closing: frozenset[int] = frozenset()) -> None:
        self.answers, self.closing = answers, closing
        self.heads: list[bytes] = []
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> "RawServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}{path}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                i = len(self.heads)
                self.heads.append(head)
                conn.sendall(self.answers[i])
                if i in self.closing:
                    return


def ok(body: bytes = BODY, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunked(body: bytes, sizes: list[int], trailer: bytes = b"") -> bytes:
    out, at = [b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"], 0
    for n in sizes:
        out.append(b"%x;ext=1\r\n%s\r\n" % (n, body[at:at + n]))
        at += n
    return b"".join(out) + b"0\r\n" + trailer + b"\r\n"


def test_a_head_is_parsed_as_http_client_parses_it():
    version, status, headers = parse_head(b"HTTP/1.0 203 Non-Authoritative\r\nX-Robots-Tag: noai\r\n"
                                          b"x-robots-tag:  otherbot: noimageai \r\nContent-Type: image/png;\r\n"
                                          b" charset=binary\r\nnot a field\r\nEmpty:")
    assert (version, status) == ("HTTP/1.0", 203)
    assert headers.get_all("X-ROBOTS-TAG") == ["noai", "otherbot: noimageai"]
    assert headers.get("content-type") == "image/png; charset=binary" and headers.get("empty") == ""
    assert headers.get("missing", "-") == "-" and headers.get_all("missing") == []
    assert parse_head(b"HTTP/1.1 404")[1] == 404  # no reason phrase, no headers


@pytest.mark.parametrize("line", [b"", b"ICY 200 OK", b"HTTP/1.1 20 OK", b"HTTP/1.1 abc OK", b"HTTP/1.1 099 x"])
def test_a_status_line_that_is_not_http_is_refused(line):
    with pytest.raises(http.client.BadStatusLine):
        parse_head(line)


def test_more_than_a_hundred_header_fields_are_refused():
    with pytest.raises(http.client.HTTPException, match="more than 100 headers"):
        parse_head(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)))


def test_the_request_head_carries_host_and_the_fields_and_refuses_control_characters():
    fields = header_fields({"User-Agent": "tagsight/1 (x)", "Accept": "*/*"})
    assert request_head("/a%20b.jpg?x=1", "[::1]:8080", fields) == (
        b"GET /a%20b.jpg?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\nAccept-Encoding: identity\r\n"
        b"User-Agent: tagsight/1 (x)\r\nAccept: */*\r\n\r\n")
    with pytest.raises(http.client.InvalidURL):
        request_head("/a b.jpg", "example.org", fields)
    with pytest.raises(ValueError):
        header_fields({"User-Agent": "x\r\nEvil: 1"})
    for agent in ("x\r\nEvil: 1", "bot\x00", "robot \u2603"):
        with pytest.raises(ValueError, match="one line of Latin-1"):
            FetchConfig(user_agent=agent)


def test_chunked_bodies_are_joined_and_the_connection_kept_for_the_next_request():
    answers = [chunked(BODY, [5, 1, len(BODY) - 6], trailer=b"X-Trailer: 1\r\n"), chunked(BODY, [len(BODY)]), ok()]
    with RawServer(answers) as server, Fetcher(OPEN, 100_000) as f:
        got = [f.fetch(server.url(f"/{n}.jpg")) for n in range(3)]
    assert got == [BODY] * 3 and server.connections == 1


def test_informational_answers_are_skipped_and_a_body_of_declared_length_read_whole():
    big = bytes(range(256)) * 1000  # arrives in many segments
    answers = [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + ok(big), ok()]
    with RawServer(answers) as server, Fetcher(OPEN, 1_000_000) as f:
        assert f.fetch(server.url("/big.jpg")) == big and f.fetch(server.url("/small.jpg")) == BODY
    assert server.connections == 1


def test_a_body_without_length_is_read_to_the_close_and_the_connection_not_reused():
    answers = [b"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\n\r\n" + BODY, ok()]
    with RawServer(answers, closing=frozenset({0})) as server, Fetcher(OPEN, 100_000) as f:
        assert f.fetch(server.url("/a.jpg")) == BODY and f.fetch(server.url("/b.jpg")) == BODY
    assert server.connections == 2


@pytest.mark.parametrize("first", [ok(extra=b"Connection: close\r\n"), ok() + b"unasked bytes",
                                   b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)])
def test_a_connection_the_server_closes_or_left_bytes_on_is_not_reused(first):
    with RawServer([first, ok()], closing=frozenset({0})) as server, Fetcher(OPEN, 100_000) as f:
        assert f.fetch(server.url("/a.jpg")) == BODY and f.fetch(server.url("/b.jpg")) == BODY
    assert server.connections == 2


def test_a_switching_protocols_answer_is_refused_and_its_connection_not_reused():
    with RawServer([b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", ok()]) as server, \
            Fetcher(OPEN, 100_000) as f:  # the server keeps the connection: the client must not
        with pytest.raises(ImageRejected, match="HTTP 101") as info:
            f.fetch(server.url("/a.jpg"))
        assert info.value.reason == "fetch_failed:101" and f.fetch(server.url("/b.jpg")) == BODY
    assert server.connections == 2


def test_an_http_1_0_keep_alive_answer_keeps_the_connection():
    keep = b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    with RawServer([keep, ok()]) as server, Fetcher(OPEN, 100_000) as f:
        assert f.fetch(server.url("/a.jpg")) == BODY and f.fetch(server.url("/b.jpg")) == BODY
    assert server.connections == 1


@pytest.mark.parametrize("answer, reason, says", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "fetch_error", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcdef\r\n0\r\n\r\n", "fetch_error", "longer"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc", "fetch_error", "before the last chunk"),
    (chunked(BODY * 10, [len(BODY) * 5] * 2), "file_too_large", "more than 100 bytes"),
    (b"HTTP/1.0 200 OK\r\n\r\n" + BODY * 3, "file_too_large", "more than 100 bytes"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", "file_too_large", "declares 101 bytes"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "media_empty", "empty body"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "fetch_error", "after 3 of 10 bytes"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "fetch_error", "IncompleteRead"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "fetch_error", "BadStatusLine"),
    (b"", "fetch_error", "RemoteDisconnected"),
])
def test_malformed_short_or_oversized_answers_are_refused_with_a_reason(answer, reason, says):
    with RawServer([answer], closing=frozenset({0})) as server, Fetcher(OPEN, 100) as f, \
            pytest.raises(ImageRejected) as info:
        f.fetch(server.url("/a.jpg"))
    assert info.value.reason == reason and says in str(info.value)


def test_an_oversized_head_is_refused():
    answer = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 70_000 + b"\r\n\r\n"
    with RawServer([answer], closing=frozenset({0})) as server, Fetcher(OPEN, 100) as f, \
            pytest.raises(ImageRejected) as info:
        f.fetch(server.url("/a.jpg"))
    assert info.value.reason == "fetch_error" and "response head over" in str(info.value)


@pytest.mark.parametrize("path, target", [
    ("/a/b.jpg", "/a/b.jpg"), ("/a%20b.jpg?x=1&y=[2]", "/a%20b.jpg?x=1&y=[2]"),
    ("/a b/é.jpg?q=a b", "/a%20b/%C3%A9.jpg?q=a%20b"), ("", "/"), ("/x<y>{z}|^`.jpg", "/x%3Cy%3E%7Bz%7D%7C%5E%60.jpg"),
])
def test_the_request_target_is_percent_encoded_only_where_needed(path, target, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    conns = Connections(1.0, 1, True)
    conn, key, head, reused = conns.take(f"http://Example.ORG:8080{path}")
    assert head.split(b"\r\n", 2)[:2] == [f"GET {target} HTTP/1.1".encode(), b"Host: example.org:8080"]
    assert key == ("http", "example.org", 8080, "") and not reused
    conn.close()
