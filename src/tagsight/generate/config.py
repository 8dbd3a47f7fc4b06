"""``DiffusionConfig``: every setting of the generator, validated at construction (the ``diffusion`` method's settings)."""

from __future__ import annotations

from dataclasses import dataclass

SPACES = ("pixel", "latent")
PREDICTIONS = ("epsilon", "v_prediction")
BETA_SCHEDULES = ("linear", "scaled_linear", "squaredcos_cap_v2")
SAMPLERS = ("ddim", "dpm")


@dataclass(frozen=True)
class DiffusionConfig:
    """A UNet (diffusers ``UNet2DConditionModel``) denoising pixels or VAE latents, conditioned on tokens.

    ``widths[i]`` is the channel count of resolution level ``i`` (level ``i`` works at
    ``resolution / 2**i``, latent resolution for ``space: latent``); ``attention[i]`` puts
    cross-attention to the prompt tokens at that level (the middle block always has it).
    ``prompt_to_time`` also adds the prompt to the timestep embedding (the mean of its token
    embeddings, padding left out, through a learned projection), so every ResNet block is conditioned,
    as in class-conditional diffusion; runs saved before the setting existed load with it off.
    """

    resolution: int = 32                       # image side in pixels (generated and trained)
    space: str = "pixel"                       # pixel | latent (diffusers AutoencoderKL at vae_path)
    vae_path: str | None = None                # latent only: a local AutoencoderKL folder (config.json + weights)
    widths: tuple[int, ...] = (32, 64, 64)
    attention: tuple[bool, ...] = (False, False, True)
    layers_per_block: int = 1
    norm_groups: int = 8
    head_dim: int = 32
    token_dim: int = 64                        # width of the token embedding fed to cross-attention
    max_tokens: int = 8                        # tokens per sample (hashtag labels, then caption words)
    prompt_to_time: bool = False               # also add the pooled prompt to the timestep embedding (every block)
    captions: bool = True                      # add words of reviewers' captions (catalog/reviews.parquet)
    prediction: str = "epsilon"                # epsilon | v_prediction
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    cfg_dropout: float = 0.1                   # share of training samples whose tokens are replaced by the null token
    crop_scale: tuple[float, float] = (0.7, 1.0)   # random-resized-crop area range (then a horizontal flip)
    ema_decay: float = 0.999                   # EMA of the weights (0: none); sampling uses the EMA
    sampler: str = "ddim"                      # ddim | dpm (DPM-Solver++ multistep)
    steps: int = 50                            # default sampling steps
    guidance: float = 3.0                      # default classifier-free guidance scale (1: none)

    def __post_init__(self) -> None:
        for name in ("widths", "attention", "crop_scale"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self._check_choices()
        self._check_architecture()
        self._check_training()

    def _check_choices(self) -> None:
        for name, allowed in (("space", SPACES), ("prediction", PREDICTIONS), ("beta_schedule", BETA_SCHEDULES),
                              ("sampler", SAMPLERS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"objective.diffusion.{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if self.space == "latent" and not self.vae_path:
            raise ValueError("objective.diffusion.vae_path is required for space: latent (a local diffusers "
                             "AutoencoderKL folder; nothing is downloaded)")

    def _check_architecture(self) -> None:
        if not self.widths or any(int(w) != w or w < 1 for w in self.widths):
            raise ValueError(f"objective.diffusion.widths must be positive integers, got {list(self.widths)}")
        if len(self.attention) != len(self.widths):
            raise ValueError(f"objective.diffusion.attention needs one flag per width ({len(self.widths)}), "
                             f"got {list(self.attention)}")
        if self.norm_groups < 1 or any(w % self.norm_groups for w in self.widths):
            raise ValueError(f"objective.diffusion.widths {list(self.widths)} must all be divisible by "
                             f"norm_groups {self.norm_groups}")
        if self.head_dim < 1 or any(w % self.head_dim for w, a in zip(self.widths, self.attention) if a) \
                or self.widths[-1] % self.head_dim:
            raise ValueError(f"objective.diffusion.head_dim {self.head_dim} must divide the widths of the "
                             f"attention levels and the last width {self.widths[-1]}")
        factor = 2 ** (len(self.widths) - 1)
        if self.resolution < 8 or self.resolution % factor:
            raise ValueError(f"objective.diffusion.resolution must be >= 8 and divisible by {factor} "
                             f"({len(self.widths)} levels), got {self.resolution}")
        if self.layers_per_block < 1 or self.token_dim < 1 or self.max_tokens < 1:
            raise ValueError("objective.diffusion.layers_per_block, token_dim and max_tokens must be >= 1")
        if not isinstance(self.prompt_to_time, bool):
            raise ValueError(f"objective.diffusion.prompt_to_time must be true or false, got {self.prompt_to_time!r}")

    def _check_training(self) -> None:
        if self.train_timesteps < 10:
            raise ValueError(f"objective.diffusion.train_timesteps must be >= 10, got {self.train_timesteps}")
        if not 0.0 <= self.cfg_dropout < 1.0:
            raise ValueError(f"objective.diffusion.cfg_dropout must be in [0, 1), got {self.cfg_dropout}")
        low, high = self.crop_scale if len(self.crop_scale) == 2 else (0, -1)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"objective.diffusion.crop_scale must be [low, high] with 0 < low <= high <= 1, "
                             f"got {list(self.crop_scale)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"objective.diffusion.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.steps < 1 or self.steps > self.train_timesteps:
            raise ValueError(f"objective.diffusion.steps must be in [1, {self.train_timesteps}], got {self.steps}")
        if self.guidance < 1.0:
            raise ValueError(f"objective.diffusion.guidance must be >= 1 (1: no guidance), got {self.guidance}")


# ``run.json`` of generator runs (pretrain and tune) names this ``forget_kind``: ``tagsight forget`` reports them
# as their own artifact kind (``generate.forget``) instead of plain runs.
FORGET_KIND = "generator"
