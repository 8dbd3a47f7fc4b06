"""Cards of artifacts on object storage: read through a copy of their records, named by their URLs."""

from tagsight.report.cards import card_for
from tests.test_lineage import world_on_store


def test_data_and_model_cards_of_artifacts_at_urls(tmp_path, mixed_source, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    url = "memory://cards-world/root"
    w = world_on_store(tmp_path, mixed_source, url)
    data = card_for(f"{url}/data/mine", vocab=f"{url}/vocab").markdown()
    assert data.startswith(f"# Data card: mine (version {w['version']})") and f"{url}/data/mine" in data
    assert "v0c4b" in data   # the vocabulary section, read from the URL
    model = card_for(f"{url}/runs/r1").markdown()
    assert model.startswith("# Model card: r1") and "step-00000010.safetensors" in model
    assert "Trained on the current version" in model and "not there any more" not in model
