"""Several processes mirroring one URL at once (torchrun ranks parsing their arguments, two verbs sharing a cache): every
one gets the whole copy and the mirror state stays one whole JSON document (moto's S3 server, shared by the processes)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.storage import MIRROR_STATE, open_filesystem, write_state  # noqa: E402
from tests.s3server import FaultyProxy, bucket, environ, moto_s3, s3_env  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Waits for its start file, then mirrors (or opens the staging folder of) the URL and prints what the copy holds
# (s3fs imported first: the wait ends at the start).
MIRROR = """
import contextlib, json, sys, time
from pathlib import Path
import s3fs
from tagsight.storage import local_folder, output_folder
start = Path(sys.argv[2])
while not start.exists():
    time.sleep(0.005)
with (output_folder(sys.argv[1], marker="manifest.json") if sys.argv[3] == "staging"
      else contextlib.nullcontext(local_folder(sys.argv[1], marker="manifest.json"))) as local:
    print(json.dumps({p.relative_to(local).as_posix(): len(p.read_bytes()) for p in local.rglob("*.bin")}))
"""


@pytest.mark.parametrize("kind", ["mirror", "staging"])
def test_processes_mirroring_one_url_at_once_all_get_the_whole_copy(tmp_path, kind):
    """The second process starts while the first is still fetching (a slow line: every response chunk delayed), so
    without a lock the first one's clean-up of files the store does not list would meet the second one's downloads,
    and a staging folder would be taken for filled while the first one is still filling it."""
    url = "s3://mirror-processes/ds"
    files = {f"part-{i:02d}.bin": (256 << 10) + i for i in range(8)}
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        bucket(url)
        fs, inner = open_filesystem(url)
        for name, size in files.items():
            fs.pipe_file(f"{inner}/{name}", os.urandom(size))
        fs.pipe_file(f"{inner}/manifest.json", b"{}")
        host, port = endpoint.removeprefix("http://").split(":")
        proxy = FaultyProxy((host, int(port)), delay=0.02)
        env = {**os.environ, **s3_env(proxy.endpoint), "TAGSIGHT_CACHE_DIR": str(tmp_path / "cache"),
               "PYTHONPATH": str(ROOT / "src")}
        starts = [tmp_path / f"start-{i}" for i in range(2)]
        procs = [subprocess.Popen([sys.executable, "-c", MIRROR, url, str(start), kind], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for start in starts]
        time.sleep(5)   # the interpreters are up and waiting
        for start in starts:
            start.write_text("go")
            time.sleep(0.6)
        results = [p.communicate(timeout=300) for p in procs]
        proxy.close()
    for proc, (out, err) in zip(procs, results):
        assert proc.returncode == 0, err
        assert json.loads(out) == files
    mirrors = [p for p in (tmp_path / "cache" / kind).iterdir() if p.is_dir()]
    assert len(mirrors) == 1
    state = json.loads((mirrors[0] / MIRROR_STATE).read_text())
    assert state["url"] == url and set(state["files"]) == {*files, "manifest.json"}
    assert not [p.name for p in mirrors[0].iterdir() if p.name.endswith(".tmp")]


def test_a_state_file_is_replaced_whole(tmp_path):
    path = tmp_path / "copy" / MIRROR_STATE
    write_state(path, {"url": "s3://b/a", "files": {"x": "1:e"}})
    write_state(path, {"url": "s3://b/a", "files": {}})
    assert json.loads(path.read_text()) == {"url": "s3://b/a", "files": {}}
    assert [p.name for p in path.parent.iterdir()] == [MIRROR_STATE]   # no temporary file left behind
