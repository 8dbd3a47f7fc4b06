"""Training methods: one module per method, each registered in ``METHODS`` (``methods/base.py``).

``hashtag`` (weak supervision, WSL), ``swav`` (SEER's self-supervision) and ``dino`` live here and register
themselves when this package is imported; ``classify`` is the fine-tuning objective (not a registered method).
Methods of higher layers register themselves from their own module (the generator: ``tagsight.generate.method``);
the CLI imports them all (``tagsight.cli.methods``).
"""

from tagsight.methods import dino, hashtag, swav
from tagsight.methods.base import DEFAULT_METHOD, METHODS, Method, Objective, RunConfig, method_of, register_method

__all__ = ["DEFAULT_METHOD", "METHODS", "Method", "Objective", "RunConfig", "dino", "hashtag", "method_of",
           "register_method", "swav"]
