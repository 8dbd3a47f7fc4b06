"""Cards of artifacts on object storage: read through a copy of their records, named by their URLs."""

import json

from tagsight.report.cards import card_for
from tagsight.storage import open_filesystem
from tests.test_lineage import make_world


def test_data_and_model_cards_of_artifacts_at_urls(tmp_path, mixed_source, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    w = make_world(tmp_path, mixed_source)
    url = "memory://cards-world/root"
    run = json.loads((w["run"] / "run.json").read_text())
    run["dataset"]["path"] = f"{url}/data/mine"
    (w["run"] / "run.json").write_text(json.dumps(run))
    fs, inner = open_filesystem(url)
    for path in sorted(p for p in w["root"].rglob("*") if p.is_file()):
        fs.pipe_file(f"{inner}/{path.relative_to(w['root']).as_posix()}", path.read_bytes())
    data = card_for(f"{url}/data/mine", vocab=f"{url}/vocab").markdown()
    assert data.startswith(f"# Data card: mine (version {w['version']})") and f"{url}/data/mine" in data
    assert "v0c4b" in data   # the vocabulary section, read from the URL
    model = card_for(f"{url}/runs/r1").markdown()
    assert model.startswith("# Model card: r1") and "step-00000010.safetensors" in model
    assert "Trained on the current version" in model and "not there any more" not in model
