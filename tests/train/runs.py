"""Running ``tagsight pretrain`` as a user does (CLI, optionally under torchrun) and reading its run folder."""

import json
import subprocess
import sys

from safetensors.torch import load_file

from tagsight.train.checkpoint import latest_checkpoint
from tests.torchrun import torchrun as launcher
from tests.train.test_pretrain import ENV


def objective_cli(objective, preset):
    """``cli(dataset, vocab, out, *sets, torchrun=0, wait=True)`` for ``--objective objective`` with ``preset`` sets."""

    def cli(dataset, vocab, out, *sets, torchrun=0, wait=True):
        base = ["-m", "tagsight.cli", "-q", "pretrain", str(dataset), "--vocab", str(vocab), "--out", str(out),
                "--objective", objective, "--json"]
        cmd = [sys.executable, *launcher(torchrun), *base]
        for s in [*preset, *sets]:
            cmd += ["--set", s]
        if not wait:
            return subprocess.Popen(cmd, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        done = subprocess.run(cmd, check=False, env=ENV, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout), done.stderr

    return cli


def weights(run, step=None):
    folder = latest_checkpoint(run) if step is None else run / "checkpoints" / f"step-{step:08d}"
    return load_file(str(folder / "model.safetensors"))


def rows(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
