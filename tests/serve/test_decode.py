"""Hostile bodies over real HTTP: every one gets its 4xx and reason, and the server keeps answering."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import zlib

import httpx
import pytest

from tagsight.serve.decode import decode_base64, parse_json
from tagsight.serve.errors import ServeError


def png_header(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (no pixel data): Pillow reads the size lazily."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def hostile_cases(kit) -> list[tuple[str, dict, int, str]]:
    """(label, httpx request kwargs, expected status, expected reason)."""
    jpeg = kit.image_bytes(size=(64, 48))
    raw = lambda data, ctype: {"content": data, "headers": {"content-type": ctype}}  # noqa: E731
    return [
        ("text body", raw(b"this is not an image", "image/jpeg"), 415, "not_an_image"),
        ("html as octet-stream", raw(b"<html></html>", "application/octet-stream"), 415, "not_an_image"),
        ("truncated jpeg", raw(jpeg[: len(jpeg) // 2], "image/jpeg"), 400, "truncated_image"),
        ("header only", raw(jpeg[:20], "image/jpeg"), 415, "not_an_image"),
        ("huge dimensions", raw(png_header(100_000, 100_000), "image/png"), 413, "too_many_pixels"),
        ("wide strip", raw(png_header(30_000_000, 1), "image/png"), 413, "too_many_pixels"),
        ("wrong content type", raw(jpeg, "text/plain"), 415, "unsupported_media_type"),
        ("no content type", {"content": jpeg}, 415, "unsupported_media_type"),
        ("empty body", raw(b"", "image/jpeg"), 400, "empty_body"),
        ("empty json body", raw(b"", "application/json"), 400, "empty_body"),
        ("malformed json", raw(b'{"image": "abc', "application/json"), 400, "malformed_json"),
        ("json nested too deeply", raw(b"[" * 200_000, "application/json"), 400, "malformed_json"),
        ("json not utf-8", raw(b"\xff\xfe{", "application/json"), 400, "malformed_json"),
        ("json array", {"json": [1, 2]}, 422, "invalid_request"),
        ("json without image", {"json": {"picture": "x"}}, 422, "missing_image"),
        ("json image not a string", {"json": {"image": 12}}, 422, "invalid_request"),
        ("bad base64", {"json": {"image": "@@@not base64@@@"}}, 400, "invalid_base64"),
        ("base64 of text", {"json": {"image": kit.b64(b"hello world")}}, 415, "not_an_image"),
        ("empty base64", {"json": {"image": ""}}, 400, "empty_image"),
        ("options not an object", {"json": {"image": kit.b64(jpeg), "options": [1]}}, 422, "invalid_options"),
        ("unknown option", {"json": {"image": kit.b64(jpeg), "options": {"colour": "red"}}}, 422, "unknown_option"),
        ("bad option value", {"json": {"image": kit.b64(jpeg), "options": {"k": 0}}}, 422, "invalid_option"),
        ("multipart without image", {"files": {"photo": ("a.jpg", jpeg, "image/jpeg")}}, 422, "missing_image"),
        ("multipart empty image", {"files": {"image": ("a.jpg", b"", "image/jpeg")}}, 400, "empty_image"),
        ("multipart bad options", {"files": {"image": ("a.jpg", jpeg, "image/jpeg")}, "data": {"options": "{k"}},
         422, "invalid_options"),
        ("multipart deep options", {"files": {"image": ("a.jpg", jpeg, "image/jpeg")},
                                    "data": {"options": "[" * 200_000}}, 422, "invalid_options"),
        ("multipart no boundary", raw(b"--x\r\n\r\n", "multipart/form-data"), 400, "malformed_multipart"),
        ("multipart cut short", raw(b'--b\r\nContent-Disposition: form-data; name="image"\r\n\r\nabc',
                                    "multipart/form-data; boundary=b"), 400, "malformed_multipart"),
    ]


def test_every_hostile_request_gets_its_4xx_and_reason(serve, colour_apps, kit):
    server = serve(colour_apps, max_pixels=1_000_000)
    with server.client() as c:
        for label, kwargs, status, reason in hostile_cases(kit):
            r = c.post("/v1/hashtags", **kwargs)
            assert r.status_code == status, (label, r.status_code, r.text)
            assert r.json()["error"]["reason"] == reason, (label, r.text)
            assert r.json()["error"]["message"], label
        assert c.get("/healthz").json()["status"] == "ok"
        assert c.post("/v1/hashtags", content=kit.image_bytes(), headers={"content-type": "image/jpeg"}).status_code == 200


def test_byte_limits_while_streaming_and_for_the_image(serve, colour_apps, kit):
    server = serve(colour_apps, max_bytes=4000, body_overhead=8000)
    noise = kit.noise_jpeg((200, 200))
    assert 4000 < len(noise) < 4000 * 4 // 3 + 8000  # within the body limit, over the image limit

    def chunks():  # no Content-Length: the limit must hold while reading
        for _ in range(30):
            yield b"\xff" * 1000

    with server.client() as c:
        r = c.post("/v1/hashtags", content=chunks(), headers={"content-type": "image/jpeg"})
        assert (r.status_code, r.json()["error"]["reason"]) == (413, "body_too_large")
        r = c.post("/v1/hashtags", content=noise, headers={"content-type": "image/jpeg"})
        assert (r.status_code, r.json()["error"]["reason"]) == (413, "image_too_large")
        r = c.post("/v1/hashtags", json={"image": kit.b64(noise)})
        assert r.status_code == 413 and r.json()["error"]["reason"] in ("image_too_large", "body_too_large")
        assert c.post("/v1/hashtags", content=kit.image_bytes(), headers={"content-type": "image/jpeg"}).status_code == 200


def raw_http(port: int, request: bytes) -> tuple[int, bytes]:
    """Send ``request`` as it is (no client fixing it up) and read the status line and the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_lying_content_length_and_broken_http(serve, colour_apps):
    server = serve(colour_apps)
    r = b"POST /v1/hashtags HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: %s\r\n\r\nabc"
    status, body = raw_http(server.port, r % b"1000000000000")
    assert status == 413 and json.loads(body)["error"]["reason"] == "body_too_large"
    status, body = raw_http(server.port, r % b"ten")
    assert status == 400  # h11 refuses an unparsable Content-Length before the app sees it
    status, _ = raw_http(server.port, b"GARBAGE\r\n\r\n")
    assert status == 400
    with server.client() as c:
        assert c.get("/healthz").status_code == 200


def test_unknown_routes_and_methods_have_reasons(serve, colour_apps):
    server = serve(colour_apps)
    with server.client() as c:
        assert c.get("/v1/hashtags").json()["error"]["reason"] == "method_not_allowed"
        assert c.post("/v2/whatever").json()["error"]["reason"] == "not_found"
        r = c.post("/v1/similar", content=b"x", headers={"content-type": "image/jpeg"})
        assert (r.status_code, r.json()["error"]["reason"]) == (404, "app_not_loaded")


def test_hundreds_of_concurrent_good_and_bad_requests(serve, colour_apps, kit):
    """300 requests at once: each good one gets its own answer, each bad one its 4xx, no 5xx, server up."""
    server = serve(colour_apps, max_pixels=1_000_000)
    cases = hostile_cases(kit)

    def request(i: int):
        if i % 3 == 0:
            label, kwargs, status, reason = cases[i % len(cases)]
            return kwargs, status, reason, None
        colour = (i % 256, (7 * i) % 256, (13 * i) % 256)
        data = kit.image_bytes(colour, size=(16 + i % 5, 16))
        return ({"content": data, "headers": {"content-type": "image/png"}} if i % 2 else
                {"json": {"image": kit.b64(kit.image_bytes(colour, size=(16 + i % 5, 16), fmt="PNG"))}},
                200, "", (colour, 16 + i % 5))

    plan = [request(i) for i in range(300)]

    async def run():
        limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as c:
            return await asyncio.gather(*(c.post("/v1/hashtags", **kw) for kw, *_ in plan))

    answers = asyncio.run(run())
    batch_sizes = []
    for (kwargs, status, reason, expect), r in zip(plan, answers):
        assert r.status_code == status, (r.status_code, r.text)
        if expect is None:
            assert r.json()["error"]["reason"] == reason
            continue
        colour, width = expect
        result = r.json()["result"]
        assert result["width"] == width  # fanned out to the right request
        if kwargs.get("json"):  # PNG is lossless: the mean colour is exact
            assert result["mean"] == [float(v) for v in colour]
        batch_sizes.append(r.json()["batch_size"])
    assert max(batch_sizes) > 1
    with server.client() as c:
        assert c.get("/healthz").json()["status"] == "ok"


def test_base64_forms_and_json_parsing_unit():
    assert decode_base64("aGVsbG8") == b"hello"  # padding optional
    assert decode_base64("data:image/png;base64,aGVsbG8=") == b"hello"
    assert decode_base64("aGV s\nbG8=") == b"hello"
    assert decode_base64("-_8") == decode_base64("+/8")
    with pytest.raises(ServeError) as err:
        parse_json(b'{"image": "a", "options": "k=3"}')
    assert err.value.reason == "invalid_options"
