"""bench/fetch/run.py --quick: both tools over a local HTTP server; without img2dataset its column is skipped."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TITLE = "## fetch: tagsight vs img2dataset over HTTP"


@pytest.mark.slow
def test_quick_mode_without_img2dataset_measures_tagsight_and_says_why_the_other_is_skipped(tmp_path, shared_data):
    data = shared_data
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## other\n\nkept as is\n")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TAGSIGHT_DATA": str(data)}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "fetch" / "run.py"), "--quick", "--doc", str(doc),
                           "--img2dataset", str(tmp_path / "no-such-img2dataset")],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = doc.read_text()
    assert "## other\n\nkept as is" in text and TITLE in text
    section = text.split(TITLE, 1)[1]
    assert f"img2dataset: skipped ({tmp_path / 'no-such-img2dataset'} does not exist)" in section
    row = next(line for line in section.splitlines() if line.startswith("| tagsight | 1 | 24 |"))
    per_cpu = float(row.split("|")[8].replace(",", ""))
    assert per_cpu > 0
    assert "tagsight 24 of 24" in section  # every photo fetched and stored
    assert "--allow-private-addresses" in section and "--format urls" in section


def test_the_photo_server_serves_the_listed_files_over_keep_alive_and_404s_the_rest(tmp_path):
    sys.path.insert(0, str(REPO / "bench" / "fetch"))
    try:
        import server
    finally:
        sys.path.remove(str(REPO / "bench" / "fetch"))
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "list.txt").write_text("a/x.jpg\n")
    httpd = server.make_server(server.load(tmp_path, tmp_path / "list.txt"))
    import threading

    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{httpd.server_address[1]}"
        with urllib.request.urlopen(f"{base}/a/x.jpg") as r:
            assert r.read() == b"\xff\xd8 not really a jpeg" and r.headers["Content-Type"] == "image/jpeg"
            assert r.version == 11
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/robots.txt")
        assert err.value.code == 404
    finally:
        httpd.shutdown()
        httpd.server_close()
