"""bench/gpu: the accelerator check's dry run on a CPU goes through every section and writes its report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "bench" / "gpu"))

from common import descendants, kill_tree  # noqa: E402
from report import markdown  # noqa: E402


@pytest.fixture(scope="module")
def dry(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-dry")
    done = subprocess.run([sys.executable, str(REPO / "bench/gpu/run.py"), "--dry", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    return done, out


def test_the_dry_run_passes_every_section_that_applies(dry):
    done, out = dry
    assert done.returncode == 0, done.stderr[-4000:]
    record = json.loads((out / "gpu.json").read_text())
    status = {name: s["status"] for name, s in record["sections"].items()}
    assert record["mode"] == "dry"
    assert status.pop("steps_compiled") == "skipped"
    assert set(status.values()) == {"ok"} and len(status) == 9
    assert "the real figures need a GPU" in done.stderr


def test_the_torchrun_section_really_killed_and_resumed_the_run(dry):
    r = json.loads((dry[1] / "gpu.json").read_text())["sections"]["torchrun"]["result"]
    assert r["killed"] and r["first_returncode"] != 0 and r["backend"] == "gloo"
    assert 0 < r["resumed_from_step"] < r["final_step"] == 12


def test_the_latent_section_trains_a_vae_runs_the_latent_preset_on_it_and_generates(dry):
    r = json.loads((dry[1] / "gpu.json").read_text())["sections"]["latent_diffusion"]["result"]
    assert r["vae_run"]["objective"] == "vae" and r["vae_run"]["steps"] == 2
    assert r["vae_eval"]["heldout_reconstruction"]["trained"]["n_photos"] > 0
    assert r["vae_eval"]["latents"]["scaling_factor"] > 0 and "trained here" in r["vae"]
    assert r["objective"] == "diffusion" and r["steps"] == 2
    assert r["generate"]["images"] == 4 and r["generate"]["size"] == 32
    assert "**vae** preset" in (dry[1] / "gpu.md").read_text()


def test_the_report_says_it_is_a_dry_run_and_shows_each_section(dry):
    text = (dry[1] / "gpu.md").read_text()
    assert "DRY RUN on a CPU" in text
    for heading in ("compute only (eager)", "The Trainer", "Input pipeline alone", "torchrun --nproc_per_node 1",
                    "**swav** preset", "**latent-diffusion** preset", "Eval feature extraction", "tagsight serve"):
        assert heading in text, heading


def test_a_failed_section_is_named_in_the_report():
    record = {"mode": "gpu", "total_s": 1.0, "sections": {
        "environment": {"status": "ok", "result": {"gpu": "X", "matmul_tflops": 1.0}},
        "serving": {"status": "failed", "error": "RuntimeError: boom"}}}
    assert "section `serving`: **failed** (RuntimeError: boom)" in markdown(record)


def test_kill_tree_reaches_processes_in_sessions_of_their_own():
    proc = subprocess.Popen(["bash", "-c", "setsid sleep 60 & sleep 60"], start_new_session=True)
    import time

    deadline = time.time() + 10
    while len(descendants(proc.pid)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    below = descendants(proc.pid)
    assert len(below) == 2
    kill_tree(proc.pid)
    proc.wait()
    for pid in below:
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
