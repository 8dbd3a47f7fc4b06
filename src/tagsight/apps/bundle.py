"""A bundle: one backbone and everything the apps built on it need, loaded together.

On disk (every part optional except the backbone)::

    BUNDLE/
      bundle.json          {"backbone": SPEC}: a run folder, 'timm:NAME', 'file:...' or 'efficientnet-lite0'
                           (absent when BUNDLE is itself a run folder: config.yaml + run.json + checkpoints/)
      calibration.json     'tagsight apps calibrate': calibrator + alt-text concepts -> hashtags, alt-text
      starter.json         'tagsight apps starter': the ImageNet classifier mapped onto a vocabulary -> hashtags,
                           alt-text without a run (tagsight.apps.starter)
      heads/<name>/        'tagsight heads train': head.json + head.safetensors -> app <name> (categorize|moderate)
      index/               'tagsight index build': index.faiss + entries.parquet + index.json -> similar

``load_bundle`` builds one ``Embedder`` (the backbone) shared by every app: ``Bundle.predict``
embeds a batch once and gives the features to each app asked for. ``load_apps`` returns the apps
alone (``name -> App``). An app whose parts are missing is absent, with the reason in
``Bundle.missing`` (e.g. hashtags without calibration.json).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from tagsight.apps.alt_text import AltTextApp
from tagsight.apps.base import App
from tagsight.apps.calibration import CALIBRATION_FILE
from tagsight.apps.embedder import Embedder, FeatureApp
from tagsight.apps.hashtags import HashtagsApp
from tagsight.apps.heads import HEAD_JSON, load_head
from tagsight.apps.run import Run, load_run
from tagsight.apps.similar import INDEX_JSON, SimilarApp
from tagsight.apps.base import APPS
from tagsight.eval.backbones import load_backbone
from tagsight.fsio import ReasonError, atomic_write_text

log = logging.getLogger(__name__)

BUNDLE_JSON = "bundle.json"
HEADS_DIR, INDEX_DIR = "heads", "index"
RUN_APPS = ("hashtags", "alt-text")


@dataclass
class Bundle:
    root: Path
    backbone_spec: str
    embedder: Embedder
    run: Run | None
    apps: dict[str, App] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)

    def app(self, name: str) -> App:
        """The app ``name``; ReasonError saying why when the bundle lacks it."""
        if name in self.apps:
            return self.apps[name]
        if name in self.missing:
            raise ReasonError("app_unavailable", f"{self.root}: app {name!r} is unavailable: {self.missing[name]}")
        raise ReasonError("unknown_app", f"{self.root} has no app {name!r} (has: {', '.join(sorted(self.apps))})")

    def predict(self, images: Sequence[Image.Image], names: Sequence[str],
                options: dict[str, dict[str, Any]] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Answers of every app in ``names`` for ``images`` from ONE backbone forward pass."""
        apps = {name: self.app(name) for name in names}
        features = self.embedder.embed(images)
        options = options or {}
        return {name: (app.predict_features(features, images, **options.get(name, {}))
                       if isinstance(app, FeatureApp) else app.predict(images, **options.get(name, {})))
                for name, app in apps.items()}

    def describe(self) -> dict[str, Any]:
        return {"bundle": str(self.root), "backbone": self.backbone_spec, "backbone_name": self.embedder.backbone.name,
                "apps": {name: app.describe() for name, app in sorted(self.apps.items())}, "missing": self.missing}


def backbone_spec(root: Path) -> str:
    """The backbone a bundle folder names (bundle.json), or the folder itself when it is a run."""
    if (root / BUNDLE_JSON).is_file():
        spec = str(json.loads((root / BUNDLE_JSON).read_text())["backbone"])
        local = root / spec
        return str(local) if not Path(spec).is_absolute() and local.exists() else spec
    if (root / "config.yaml").is_file() and (root / "run.json").is_file():
        return str(root)
    raise ReasonError("not_a_bundle", f"{root} is neither a bundle (no {BUNDLE_JSON}) nor a run folder "
                                      "(no config.yaml + run.json)")


def init_bundle(root: str | Path, backbone: str) -> Path:
    """Create (or keep) ``root/bundle.json`` naming ``backbone``; a run folder needs none."""
    root = Path(root)
    if (root / "config.yaml").is_file() or (root / BUNDLE_JSON).is_file():
        return root
    spec = str(Path(backbone).resolve()) if Path(backbone).exists() else backbone
    atomic_write_text(root / BUNDLE_JSON, json.dumps({"backbone": spec}, indent=1) + "\n")
    return root


def _is_run(spec: str) -> bool:
    p = Path(spec)
    return p.is_dir() and (p / "run.json").is_file()


def load_bundle(path: str | Path, device: str = "cpu", batch_size: int = 64) -> Bundle:
    """Load the backbone once and every app the bundle has parts for."""
    root = Path(path)
    spec = backbone_spec(root)
    run = load_run(spec) if _is_run(spec) else None
    embedder = Embedder(run.backbone if run else load_backbone(spec), device, batch_size)
    bundle = Bundle(root, spec, embedder, run)
    _add_run_apps(bundle)
    _add_heads(bundle)
    _add_index(bundle)
    log.info("bundle %s: apps %s", root, ", ".join(sorted(bundle.apps)) or "none")
    return bundle


def load_apps(path: str | Path, device: str = "cpu") -> dict[str, App]:
    """The apps of a bundle (or run folder), sharing one backbone."""
    return load_bundle(path, device).apps


def _add_run_apps(bundle: Bundle) -> None:
    from tagsight.apps.starter import add_starter_apps, is_starter

    if bundle.run is None and is_starter(bundle.root):  # the ImageNet classifier mapped onto a vocabulary
        add_starter_apps(bundle)
        return
    if bundle.run is None:
        for name in RUN_APPS:
            bundle.missing[name] = "the backbone is not a tagsight run with a hashtag head"
        return
    if not (bundle.root / CALIBRATION_FILE).is_file():
        for name in RUN_APPS:
            bundle.missing[name] = f"no {CALIBRATION_FILE}: run 'tagsight apps calibrate {bundle.run.run_dir}'"
        return
    for cls in (HashtagsApp, AltTextApp):
        bundle.apps[cls.name] = cls.load(bundle.root, bundle.embedder, bundle.run.head)


def _add_heads(bundle: Bundle) -> None:
    heads = bundle.root / HEADS_DIR
    for head_dir in sorted(p for p in heads.iterdir() if (p / HEAD_JSON).is_file()) if heads.is_dir() else []:
        if head_dir.name in (*RUN_APPS, "similar"):
            raise ReasonError("bad_head_name", f"{head_dir}: a head may not be named like the app {head_dir.name!r}")
        head = load_head(head_dir)
        bundle.apps[head_dir.name] = APPS.get(head.meta["task"])(bundle.embedder, head, head_dir.name)


def _add_index(bundle: Bundle) -> None:
    index_dir = bundle.root / INDEX_DIR
    if (index_dir / INDEX_JSON).is_file():
        bundle.apps["similar"] = SimilarApp.load(index_dir, bundle.embedder)
    else:
        bundle.missing["similar"] = f"no {INDEX_DIR}/{INDEX_JSON}: run 'tagsight index build DATASET --backbone ... --out {index_dir}'"
