"""bench/ray/run.py --quick runs end to end: local and Ray give the same version, rates are measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the ray engine needs the ray extra: pip install 'tagsight[ray]'")
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.ray
@pytest.mark.slow
def test_the_quick_mode_runs_and_reports_every_section(tmp_path):
    out = tmp_path / "r.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / "ray" / "run.py"), "--quick", "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())
    engines = results["sections"]["engines"]
    assert results["photos"] == 12 and engines["same_version"] is True
    for run in (engines["local"], engines["ray"]):
        assert run["items"] == 12 and run["wall_s"] > 0 and run["cpu_s"] > 0 and run["per_cpu_s"] > 0
    assert engines["ray_over_local_per_cpu"] > 0 and engines["ray_start_s"] > 0
    assert "## engines" in proc.stdout
