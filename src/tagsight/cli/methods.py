"""The training methods every verb sees: importing this module registers all of them in ``METHODS``.

Methods register themselves from the module that owns them (registration goes up); this is where the
CLI assembles them: the built-in ``hashtag``, ``swav`` and ``dino`` (``tagsight.methods``) and the generator's
``diffusion`` (``tagsight.generate.method``) and its autoencoder's ``vae`` (``tagsight.generate.vae_method``). A new method's module is added here.
"""

from __future__ import annotations

import tagsight.generate.method  # noqa: F401  (registers "diffusion")
import tagsight.generate.vae_method  # noqa: F401  (registers "vae")
import tagsight.methods.dino  # noqa: F401
import tagsight.methods.hashtag  # noqa: F401
import tagsight.methods.swav  # noqa: F401
from tagsight.methods import METHODS

__all__ = ["METHODS"]
