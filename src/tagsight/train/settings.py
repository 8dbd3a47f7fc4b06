"""The loop's and the optimiser's settings, apart from the code that runs them.

``LoopConfig`` (epochs, accumulation, logging and checkpoint cadence, a step budget, bf16, channels-last,
``torch.compile``) and ``OptimConfig`` (SGD or AdamW, linearly scaled learning rate, warm-up, cosine or step
decay) are frozen dataclasses validated at construction. Importing this module loads neither torch nor the
Trainer, so a config can be read, checked and documented without them; only a ``compile`` backend is checked
against torch's list of backends, and torch is imported for that check alone.
"""

from __future__ import annotations

from dataclasses import dataclass

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "step")


@dataclass(frozen=True)
class LoopConfig:
    epochs: int = 1
    accumulate: int = 1            # micro-batches per optimiser step (gradient accumulation)
    log_every: int = 10            # optimiser steps between log lines / metric rows
    checkpoint_every: int = 50     # optimiser steps between checkpoints (and one at the end)
    keep_last: int = 2
    max_steps: int | None = None   # stop early (a compute budget); the schedule still spans all epochs
    bf16: bool = True              # autocast to bfloat16 on CUDA; ignored on CPU
    channels_last: bool = True     # NHWC weights and images on CUDA (faster convolutions); ignored on CPU
    compile: str | None = None     # torch.compile backend for the training forward ("inductor"); None: eager

    def __post_init__(self) -> None:
        for name in ("epochs", "accumulate", "log_every", "checkpoint_every", "keep_last"):
            if getattr(self, name) < 1:
                raise ValueError(f"loop.{name} must be >= 1, got {getattr(self, name)}")
        if self.compile is not None and self.compile not in compile_backends():
            raise ValueError(f"loop.compile must be null or a torch.compile backend {compile_backends()}, "
                             f"got {self.compile!r}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"loop.max_steps must be >= 1 or null, got {self.max_steps}")


def compile_backends() -> list[str]:
    """The backends ``torch.compile`` accepts here (imports torch: called only when a backend is named)."""
    import torch._dynamo

    return sorted(torch._dynamo.list_backends(exclude_tags=()))


@dataclass(frozen=True)
class OptimConfig:
    name: str = "sgd"
    base_lr: float = 0.1          # learning rate per `reference_batch` images (Goyal et al. 2017 linear scaling)
    reference_batch: int = 256
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.05
    schedule: str = "cosine"
    step_milestones: tuple[float, ...] = (0.5, 0.75, 0.9)   # fractions of training, for "step"
    step_gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.name not in OPTIMIZERS:
            raise ValueError(f"optim.name must be one of {OPTIMIZERS}, got {self.name!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"optim.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.base_lr <= 0 or self.reference_batch < 1:
            raise ValueError("optim.base_lr must be > 0 and optim.reference_batch >= 1")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"optim.warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        object.__setattr__(self, "step_milestones", tuple(self.step_milestones))

    def scaled_lr(self, global_batch: int) -> float:
        """Peak learning rate for a global batch: base_lr x global_batch / reference_batch."""
        return self.base_lr * global_batch / self.reference_batch
