"""A small text/hashtag-conditioned diffusion generator, pretrained on a dataset and quality-tuned on a curated set.

Modules and their layer (imports flow one way):

* ``config`` — ``DiffusionConfig`` (a leaf: imports nothing from tagsight; ``train.config`` embeds it);
* ``conditioning`` — prompts and posts -> tokens through the dataset's ``Vocabulary`` (tags layer);
* ``model``, ``objective`` — the diffusers UNet, the token encoder, the optional VAE, the DDPM loss (objectives layer);
* ``data`` — the training stream (images at the generator's resolution + tokens) (data layer);
* ``recipe``, ``heldout``, ``tune`` — training through the shared ``Trainer`` (train layer); ``recipe`` registers
  the ``diffusion`` objective of ``tagsight pretrain`` (loaded by name from ``train.pretrain.RECIPE_MODULES``);
* ``runs``, ``sample``, ``forget`` — loading a run, sampling images, the forget kind (apps layer).

Nothing here is imported by ``import tagsight``.
"""
