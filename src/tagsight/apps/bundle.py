"""A bundle: one backbone and everything the apps built on it need, loaded together.

On disk (every part optional except the backbone)::

    BUNDLE/
      bundle.json          {"backbone": SPEC}: a run folder, 'timm:NAME', 'file:...' or 'efficientnet-lite0'; a
                           path relative to BUNDLE, with "backbone_resolved" its absolute form when written
                           (absent when BUNDLE is itself a run folder: config.yaml + run.json + checkpoints/;
                           an export of 'tagsight export' names its own model.safetensors, see apps.export)
      calibration.json     'tagsight apps calibrate': calibrator + alt-text concepts -> hashtags, alt-text
      starter.json         'tagsight apps starter': the ImageNet classifier mapped onto a vocabulary -> hashtags,
                           alt-text without a run (tagsight.apps.starter)
      heads/<name>/        'tagsight heads train': head.json + head.safetensors -> the app of its task
                           (categorize|moderate); several heads of one task: app <name> each
      index/               'tagsight index build': index.faiss + entries.parquet + index.json -> similar

``load_bundle`` builds one ``Embedder`` (the backbone) shared by every app: ``Bundle.predict``
embeds a batch once and gives the features to each app asked for. ``load_apps`` returns the apps
alone (``name -> App``). An app whose parts are missing is absent, with the reason in
``Bundle.missing`` (e.g. hashtags without calibration.json).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from tagsight.apps.alt_text import AltTextApp
from tagsight.apps.base import App
from tagsight.apps.calibrators import CALIBRATION_FILE
from tagsight.apps.embedder import Embedder, FeatureApp
from tagsight.apps.hashtags import HashtagsApp
from tagsight.apps.export_format import EXPORT_FORMAT, load_exported_backbone, load_exported_hashtag_head
from tagsight.apps.head_apps import find_heads
from tagsight.apps.run import Run, load_run, load_run_backbone
from tagsight.apps.similar import INDEX_JSON, SimilarApp
from tagsight.apps.base import APPS
from tagsight.eval.backbones import load_backbone
from tagsight.models.backbone import Backbone
from tagsight.models.heads import LinearHead
from tagsight.models.pretrained import EFFICIENTNET_LITE0
from tagsight.fsio import ReasonError, atomic_write_text
from tagsight.storage import is_url, local_folder, location, mirror_origin, relative_url, resolve_from

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
    hashtag_head: LinearHead | None = None                  # the run's (or an export's) hashtag head
    aliases: dict[str, str] = field(default_factory=dict)   # head folder name -> its app name

    def app(self, name: str) -> App:
        """The app ``name`` (or a head's folder name); ReasonError saying why when the bundle lacks it."""
        name = self.aliases.get(name, name)
        if name in self.apps:
            return self.apps[name]
        if name in self.missing:
            raise ReasonError("app_unavailable", f"{self.root}: app {name!r} is unavailable: {self.missing[name]}")
        raise ReasonError("unknown_app", f"{self.root} has no app {name!r} (has: {', '.join(sorted(self.apps))})")

    def predict(self, images: Sequence[Image.Image], names: Sequence[str],
                options: dict[str, dict[str, Any]] | None = None) -> dict[str, list[dict[str, Any]]]:
        """Answers of every app in ``names`` for ``images`` from ONE backbone forward pass."""
        apps = {name: self.app(name) for name in names}   # answers keyed as asked (an app or a head folder name)
        features = self.embedder.embed(images)
        options = options or {}
        return {name: (app.predict_features(features, images, **options.get(name, {}))
                       if isinstance(app, FeatureApp) else app.predict(images, **options.get(name, {})))
                for name, app in apps.items()}

    def describe(self) -> dict[str, Any]:
        return {"bundle": location(self.root), "backbone": self.backbone_spec, "backbone_name": self.embedder.backbone.name,
                "apps": {name: app.describe() for name, app in sorted(self.apps.items())}, "missing": self.missing,
                "aliases": self.aliases}


def read_bundle_json(root: Path) -> dict[str, Any]:
    try:
        record = json.loads((root / BUNDLE_JSON).read_text())
    except ValueError as exc:
        raise ReasonError("bad_bundle", f"{root / BUNDLE_JSON} is not valid JSON ({exc})") from None
    if not isinstance(record, dict) or "backbone" not in record:
        raise ReasonError("bad_bundle", f"{root / BUNDLE_JSON} names no backbone")
    return record


def backbone_spec(root: Path) -> str:
    """The backbone a bundle folder names (bundle.json), or the folder itself when it is a run.

    A path in bundle.json is relative to the bundle (``backbone``), with the absolute path it had when
    written kept as ``backbone_resolved``: the relative one is tried first (a project moved whole), then
    the absolute one (a bundle moved alone). Old bundles with an absolute ``backbone`` load as before.
    """
    if (root / BUNDLE_JSON).is_file():
        record = read_bundle_json(root)
        return _resolve_spec(str(record["backbone"]), record.get("backbone_resolved"), root)
    if (root / "config.yaml").is_file() and (root / "run.json").is_file():
        return str(root)
    raise ReasonError("not_a_bundle", f"{root} is neither a bundle (no {BUNDLE_JSON}) nor a run folder "
                                      "(no config.yaml + run.json)")


def _is_named(spec: str) -> bool:
    """A backbone named, not a path: 'timm:NAME', the packaged Lite0 or a timm model name."""
    import timm

    return spec.startswith("timm:") or spec == EFFICIENTNET_LITE0 or ("/" not in spec and timm.is_model(spec))


def _resolve_spec(spec: str, resolved: str | None, root: Path) -> str:
    prefix, path = ("file:", spec[5:]) if spec.startswith("file:") else ("", spec)
    if not prefix and _is_named(spec):
        return spec
    candidates: list[str | Path] = [path if is_url(path) or Path(path).is_absolute() else resolve_from(root, path)]
    if resolved:
        candidates.append(resolved.removeprefix("file:"))
    elif not is_url(path) and not Path(path).is_absolute():
        candidates.append(Path(path))   # the old form: a 'file:' path as typed, relative to where it was written
    for candidate in candidates:
        found = _existing(candidate)
        if found is not None:
            return prefix + str(found)
    raise ReasonError("backbone_missing", f"{root / BUNDLE_JSON} names the backbone {spec!r}, found neither "
                                          f"at {' nor at '.join(str(c) for c in candidates)}: move the bundle "
                                          "together with it, or rerun 'tagsight apps calibrate'")


def _existing(candidate: str | Path) -> Path | None:
    """A backbone path that exists, as a local path (a run on object storage mirrored into the cache)."""
    if is_url(candidate):
        try:
            return local_folder(str(candidate), marker="run.json")
        except (ReasonError, FileNotFoundError):
            return None
    return Path(candidate) if Path(candidate).exists() else None


def portable_spec(backbone: str, root: Path) -> dict[str, str]:
    """bundle.json's backbone fields: a local path relative to ``root`` (and absolute, as written), a name as is.

    A run read from object storage is named by its URL (relative to the bundle's URL when both are in one store),
    never by the local mirror it was read from."""
    prefix, path = ("file:", backbone[5:]) if backbone.startswith("file:") else ("", backbone)
    if not Path(path).exists() or (not prefix and _is_named(backbone)):
        return {"backbone": backbone}
    url, root_url = mirror_origin(path), mirror_origin(root)
    if url is not None:
        relative = relative_url(url, root_url) if root_url is not None else None
        return {"backbone": prefix + (relative or url), "backbone_resolved": prefix + url}
    if root_url is not None:
        log.warning("bundle bound for %s names the local backbone %s: it loads only on this machine", root_url, path)
    absolute = Path(path).resolve()
    return {"backbone": prefix + os.path.relpath(absolute, root.resolve()), "backbone_resolved": prefix + str(absolute)}


def init_bundle(root: str | Path, backbone: str) -> Path:
    """Create (or keep) ``root/bundle.json`` naming ``backbone``; a run folder needs none."""
    root = Path(root)
    if (root / "config.yaml").is_file() or (root / BUNDLE_JSON).is_file():
        return root
    root.mkdir(parents=True, exist_ok=True)
    atomic_write_text(root / BUNDLE_JSON, json.dumps(portable_spec(backbone, root), indent=1) + "\n")
    return root


def _is_run(spec: str) -> bool:
    p = Path(spec)
    return p.is_dir() and (p / "run.json").is_file()


def bundle_backbone(root: str | Path) -> tuple[Backbone, str, Run | None]:
    """The backbone of a bundle (or run folder, or export) with its spec and, when it is a run, the run."""
    root = Path(root)
    if (root / BUNDLE_JSON).is_file() and read_bundle_json(root).get("format") == EXPORT_FORMAT:
        return load_exported_backbone(root), f"export:{location(root)}", None   # a mirror: named by its URL
    spec = backbone_spec(root)
    if _is_run(spec):
        run = load_run(spec)
        return run.backbone, spec, run
    if Path(spec).is_dir():   # a checkpoint folder of a run: read without the trainer's config classes
        return load_run_backbone(spec), spec, None
    return load_backbone(spec), spec, None


def load_bundle(path: str | Path, device: str = "cpu", batch_size: int = 64) -> Bundle:
    """Load the backbone once and every app the bundle has parts for (a bundle at an fsspec URL is mirrored first)."""
    root = local_folder(path)
    backbone, spec, run = bundle_backbone(root)
    embedder = Embedder(backbone, device, batch_size)
    bundle = Bundle(root, spec, embedder, run, hashtag_head=run.head if run else load_exported_hashtag_head(root))
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
    if bundle.hashtag_head is None:
        for name in RUN_APPS:
            bundle.missing[name] = "the backbone is not a tagsight run with a hashtag head"
        return
    if not (bundle.root / CALIBRATION_FILE).is_file():
        run = bundle.run.run_dir if bundle.run else "RUN"
        for name in RUN_APPS:
            bundle.missing[name] = f"no {CALIBRATION_FILE}: run 'tagsight apps calibrate {run}'"
        return
    for cls in (HashtagsApp, AltTextApp):
        bundle.apps[cls.name] = cls.load(bundle.root, bundle.embedder, bundle.hashtag_head)


def head_app_names(tasks: dict[str, str]) -> dict[str, str]:
    """Head folder name -> app name, from each head's declared task (``tasks``: folder -> task).

    A task with one head is served under the task's name (``heads/products`` of task categorize is
    the app ``categorize``); several heads of one task are served under their folder names.
    """
    per_task = Counter(tasks.values())
    names = {folder: task if per_task[task] == 1 else folder for folder, task in tasks.items()}
    for folder, name in names.items():
        if name in (*RUN_APPS, "similar") or (name != tasks[folder] and name in per_task):
            raise ReasonError("bad_head_name", f"head {folder!r} ({tasks[folder]}) would be served as {name!r}, "
                                               "the name of another app: rename its folder")
    return names


def _add_heads(bundle: Bundle) -> None:
    loaded = find_heads(bundle.root / HEADS_DIR)
    names = head_app_names({folder: head.meta["task"] for folder, head in loaded.items()})
    for folder, head in loaded.items():
        bundle.apps[names[folder]] = APPS.get(head.meta["task"])(bundle.embedder, head, folder, names[folder])
        if folder != names[folder]:
            bundle.aliases[folder] = names[folder]


def _add_index(bundle: Bundle) -> None:
    index_dir = bundle.root / INDEX_DIR
    if (index_dir / INDEX_JSON).is_file():
        bundle.apps["similar"] = SimilarApp.load(index_dir, bundle.embedder)
    else:
        bundle.missing["similar"] = f"no {INDEX_DIR}/{INDEX_JSON}: run 'tagsight index build DATASET --backbone ... --out {index_dir}'"
