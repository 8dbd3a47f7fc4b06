"""``tagsight serve``: the real CLI in a subprocess (apps from a stand-in ``load_apps``), and its clear errors."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import tagsight.apps
from tagsight.cli import main

REPO = Path(__file__).resolve().parents[2]

# The apps package of this branch has no load_apps yet: the subprocess installs a stand-in
# serving the test ColourApp, then runs the real CLI entry point.
LAUNCH = """
import sys, importlib.util
spec = importlib.util.spec_from_file_location("serve_conftest", {conftest!r})
kit = importlib.util.module_from_spec(spec); sys.modules["serve_conftest"] = kit; spec.loader.exec_module(kit)
import tagsight.apps
tagsight.apps.load_apps = lambda bundle, device: {{"hashtags": kit.ColourApp(per_call=0.0), "similar": kit.SimilarColours(bundle)}}
from tagsight.cli import main
sys.exit(main(sys.argv[1:]))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serves_over_http_and_stops_on_sigterm(tmp_path, kit):
    token = tmp_path / "token"
    token.write_text(kit.TOKEN + "\n")
    port = free_port()
    code = LAUNCH.format(conftest=str(Path(__file__).with_name("conftest.py")))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--bundle", str(tmp_path), "--port", str(port),
                             "--max-batch", "4", "--admin-token-file", str(token), "--device", "cpu",
                             "--log-level", "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180  # generous: a loaded 2-core machine imports torch slowly
        while True:
            try:
                health = httpx.get(url + "/healthz", timeout=2).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert set(health["apps"]) == {"hashtags", "similar"} and health["batching"]["max_batch"] == 4
        r = httpx.post(url + "/v1/hashtags", content=kit.image_bytes(), headers={"content-type": "image/jpeg"})
        assert r.status_code == 200 and r.json()["result"]["width"] == 32
        r = httpx.post(url + "/admin/reload", headers={"authorization": f"Bearer {kit.TOKEN}"})
        assert r.status_code == 200 and r.json()["apps"] == ["hashtags", "similar"]
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    # uvicorn shuts down gracefully, then re-raises the captured SIGTERM: -15 is a clean stop
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Traceback" not in out, out


def test_cli_errors_are_reasoned(tmp_path, capsys, monkeypatch):
    assert main(["serve", "--bundle", str(tmp_path / "missing")]) == 2
    assert "bundle_missing" in capsys.readouterr().err
    monkeypatch.delattr(tagsight.apps, "load_apps", raising=False)
    monkeypatch.setitem(sys.modules, "tagsight.apps", tagsight.apps)
    assert main(["serve", "--bundle", str(tmp_path), "--device", "cpu"]) == 2
    assert "no_app_loader" in capsys.readouterr().err
    monkeypatch.setattr(tagsight.apps, "load_apps", lambda b, d: {}, raising=False)
    assert main(["serve", "--bundle", str(tmp_path), "--device", "cpu"]) == 2
    assert "empty_bundle" in capsys.readouterr().err


def test_cli_checks_settings_and_the_token_file(tmp_path, capsys, monkeypatch, kit):
    monkeypatch.setattr(tagsight.apps, "load_apps", lambda b, d: {"hashtags": kit.ColourApp()}, raising=False)
    short = tmp_path / "token"
    short.write_text("short")
    assert main(["serve", "--bundle", str(tmp_path), "--admin-token-file", str(short)]) == 2
    assert "at least 16 characters" in capsys.readouterr().err
    assert main(["serve", "--bundle", str(tmp_path), "--max-batch", "0"]) == 2
    assert "max_batch" in capsys.readouterr().err
    assert main(["serve", "--bundle", str(tmp_path), "--device", "tpu"]) == 2
    assert "bad_device" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_device_resolution(device):
    from tagsight.serve.loader import resolve_device

    assert resolve_device(device) in ("cpu", "cuda")
