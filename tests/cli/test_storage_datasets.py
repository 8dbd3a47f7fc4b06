"""Dataset verbs on object storage: curation scores a dataset at a URL in a local copy and publishes it back,
exports a new dataset to a URL, and the exported dataset names its parent by URL."""

import json

from tagsight.cli import main
from tagsight.ingest.pipeline import IngestConfig, ingest
from tagsight.ingest.sources import open_source
from tagsight.lineage import read_artifact
from tagsight.schema import catalog
from tagsight.storage import local_folder, read_bytes
from tests.s3server import put_folder


def test_curate_filter_and_export_on_a_store(mixed_source, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    path, _ = mixed_source
    ds = tmp_path / "ds"
    ingest(open_source(path, "jsonl", name="feed"), ds, cfg=IngestConfig(workers=1))
    url = f"memory://curation-{tmp_path.name}"
    put_folder(ds, f"{url}/ds")
    before = json.loads(read_bytes(f"{url}/ds/manifest.json"))
    assert main(["-q", "curate", "filter", f"{url}/ds", "--set", "filters=[exposure, contrast]", "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert counts["samples"] == counts["passed"] + sum(counts["rejected"].values())
    scored = local_folder(f"{url}/ds", marker="manifest.json")
    assert json.loads((scored / "manifest.json").read_text())["version"] == before["version"]
    assert len(catalog.read_table(scored, "curation")) == counts["samples"]   # the scores went up to the store
    assert main(["-q", "curate", "export", f"{url}/ds", "--out", f"{url}/curated", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples_kept"] == counts["passed"]
    curated = read_artifact(f"{url}/curated")
    assert curated.kind == "dataset" and any(ref.path == f"{url}/ds" for ref in curated.parents)
