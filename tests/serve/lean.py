"""What importing the server loads: run in a fresh interpreter, so nothing the test process imported counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FITTING = ("tagsight.train", "tagsight.methods", "tagsight.eval.features", "tagsight.eval.finetune",
           "tagsight.eval.linear", "tagsight.eval.transfer", "tagsight.generate", "tagsight.curate",
           "tagsight.relevance")
"""Packages and modules the serve-time path must never import (training, fitting, generation, curation)."""

SRC = Path(__file__).resolve().parents[2] / "src"


def loaded_modules(code: str) -> list[str]:
    """The modules loaded after running ``code`` in a fresh interpreter over this checkout's sources."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def fitting_modules(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == f or m.startswith(f + ".") for f in FITTING)]
