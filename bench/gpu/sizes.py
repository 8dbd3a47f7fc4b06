"""What the accelerator check runs: the real sizes on a CUDA machine, tiny ones for the CPU dry run."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    """Every size the sections use; ``GPU`` and ``DRY`` are the two presets."""

    name: str
    models: tuple[str, ...]        # hashtag backbones, at ``img`` px
    img: int
    batch: int                     # per step, hashtag runs
    warmup: int                    # untimed steps (compilation happens here)
    steps: int                     # timed steps of the compute-only loop
    compile: bool                  # also measure torch.compile (inductor)
    workers: int                   # loader workers of every real-data run
    holdout: float                 # held-out share of posts (the serving bundle is calibrated on them)
    pipeline_batches: int          # batches timed in the input-pipeline section
    trainer_steps: int             # optimiser steps of each Trainer run (half of them are the warm-up window)
    torchrun_steps: int            # steps of the torchrun run; killed after its first checkpoint
    torchrun_checkpoint: int       # checkpoint interval of the torchrun run
    objective_steps: int           # steps of the SwAV and latent-diffusion runs
    swav_overrides: tuple[str, ...]
    diffusion_overrides: tuple[str, ...]
    vae_overrides: tuple[str, ...]  # the VAE preset trained first (its RUN/vae is the latent run's vae_path)
    generate_steps: int            # sampling steps of the 4 images generated from the latent run
    feature_images: int            # photos whose features are extracted
    serve_seconds: float           # load per concurrency level
    clients: tuple[int, ...]


GPU = Sizes(
    name="gpu", models=("resnet50", "vit_base_patch16_224"), img=224, batch=256, warmup=8, steps=25, compile=True,
    workers=16, holdout=0.1, pipeline_batches=30, trainer_steps=40, torchrun_steps=30, torchrun_checkpoint=10,
    objective_steps=12,
    swav_overrides=("data.batch_size=64", "loop.accumulate=1"),
    diffusion_overrides=("data.batch_size=64",),
    vae_overrides=("data.batch_size=16", "objective.vae.scale_photos=512"), generate_steps=30,
    feature_images=984, serve_seconds=8.0, clients=(8, 32),
)

DRY = Sizes(
    name="dry", models=("resnet18", "vit_tiny_patch16_224"), img=32, batch=8, warmup=1, steps=2, compile=False,
    workers=2, holdout=0.4, pipeline_batches=3, trainer_steps=4, torchrun_steps=12, torchrun_checkpoint=2,
    objective_steps=2,
    swav_overrides=("model.name=resnet18", "model.img_size=32", "data.batch_size=4", "loop.accumulate=1",
                    "objective.swav.prototypes=16", "objective.swav.projection_dim=16",
                    "objective.swav.hidden_dim=32", "objective.swav.queue_length=0",
                    "data.multicrop.global_size=32", "data.multicrop.local_size=16", "data.multicrop.n_local=2"),
    diffusion_overrides=("data.batch_size=2", "objective.diffusion.resolution=32", "objective.diffusion.widths=[16,32]",
                         "objective.diffusion.attention=[false,true]", "objective.diffusion.layers_per_block=1",
                         "objective.diffusion.norm_groups=8", "objective.diffusion.head_dim=8",
                         "objective.diffusion.token_dim=16", "objective.diffusion.max_tokens=4"),
    vae_overrides=("data.batch_size=2", "objective.vae.resolution=32", "objective.vae.widths=[8,8]",
                   "objective.vae.layers_per_block=1", "objective.vae.norm_groups=8", "objective.vae.scale_photos=8"),
    generate_steps=2,
    feature_images=32, serve_seconds=1.0, clients=(8, 32),
)
