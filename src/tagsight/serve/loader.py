"""Loading the apps of a bundle for the server: the one place that calls ``tagsight.apps.load_apps``.

Kept apart (and imported lazily) so the server runs with any ``name -> App`` mapping and the CLI
gets a clear error when the installed apps package has no ``load_apps`` yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from tagsight.apps.base import App
from tagsight.fsio import ReasonError
from tagsight.storage import local_folder

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is present, else ``cpu``; other values pass through checked."""
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ReasonError("bad_device", f"--device must be auto, cpu or cuda[:N], got {device!r}")
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_bundle_apps(bundle_dir: str | Path, device: str = "auto") -> dict[str, App]:
    """``tagsight.apps.load_apps(bundle_dir, device)``, checked: a mapping of app names to ``App``s."""
    bundle = local_folder(bundle_dir)   # a bundle at an fsspec URL: mirrored (brought up to date on every reload)
    if not bundle.is_dir():
        raise ReasonError("bundle_missing", f"bundle folder {bundle} does not exist")
    try:
        from tagsight.apps import load_apps
    except ImportError as exc:
        raise ReasonError("no_app_loader", "this tagsight has no tagsight.apps.load_apps (the apps package that "
                          f"builds hashtags, alt-text, ... from a bundle is not installed): {exc}") from None
    apps = load_apps(bundle, resolve_device(device))
    if not isinstance(apps, Mapping) or not apps:
        raise ReasonError("empty_bundle", f"load_apps({bundle}) returned no apps")
    log.info("loaded %s from %s", ", ".join(sorted(apps)), bundle)
    return dict(apps)


def bundle_loader(bundle_dir: str | Path, device: str = "auto") -> Callable[[], dict[str, App]]:
    """A zero-argument loader for ``create_app(..., loader=...)`` (``POST /admin/reload``)."""
    return partial(load_bundle_apps, bundle_dir, device)
