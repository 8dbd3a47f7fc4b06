"""How much a trained generator uses its prompt, on the held-out posts of a dataset (``tagsight judge conditioning``).

``measure_conditioning(run, dataset)`` loads the generator (``--checkpoint`` as ``tagsight generate``), streams the
held-out split of ``dataset`` the way the run's own end-of-run evaluation does (the run's data settings, centre
crops, every post's own tokens) and returns ``generate.heldout.conditioning_gain``: the EMA weights' denoising loss
with each post's tokens and with the null token, same fixed noise and timesteps, per timestep band.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tagsight.data.index import SampleIndex
from tagsight.generate.heldout import conditioning_gain
from tagsight.generate.method import token_stream
from tagsight.generate.runs import load_generator
from tagsight.train.distributed import DistEnv


def measure_conditioning(run_dir: str | Path, dataset: str | Path, checkpoint: str = "auto", repeats: int = 4,
                         max_samples: int | None = None, seed: int = 1234) -> dict[str, Any]:
    """``conditioning_gain`` of ``run_dir``'s generator on ``dataset``'s held-out posts, with what was measured."""
    if repeats < 1 or (max_samples is not None and max_samples < 1):
        raise ValueError(f"repeats and max_samples must be >= 1, got {repeats} and {max_samples}")
    run, env = load_generator(run_dir, checkpoint), DistEnv()
    stream = token_stream(SampleIndex.build(dataset), run.table.vocab, run.cfg, run.objective.data_config,
                          "heldout", env)
    result = conditioning_gain(run.objective, stream, env, 0, repeats, seed, max_samples)
    return {"run": str(run.path), "checkpoint": run.checkpoint.name, "step": run.step, "kind": run.kind,
            "dataset": str(Path(dataset).resolve()), **result}
