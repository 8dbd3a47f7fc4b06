"""A small text/hashtag-conditioned diffusion generator, pretrained on a dataset and quality-tuned on a curated set.

Modules and their layer (imports flow one way):

* ``config`` — ``DiffusionConfig``, the ``diffusion`` method's settings (a leaf: imports nothing from tagsight);
* ``conditioning`` — prompts and posts -> tokens through the dataset's ``Vocabulary`` (tags layer);
* ``model``, ``objective`` — the diffusers UNet, the token encoder, the optional VAE, the DDPM loss (an ``Objective``);
* ``data`` — the training stream (images at the generator's resolution + tokens) (data layer);
* ``method``, ``heldout``, ``tune`` — training through the shared ``Trainer``; ``method`` registers the
  ``diffusion`` method of ``tagsight pretrain`` in ``tagsight.methods.METHODS`` (the CLI imports it);
* ``runs``, ``sample``, ``forget`` — loading a run, sampling images, the forget kind (apps layer).

Nothing here is imported by ``import tagsight``.
"""
