"""tagsight forget reaches the curation table, review decisions and similar-image indexes on disk."""

import pyarrow.parquet as pq

from tagsight.curate.chain import CurateConfig, FilterSpec, run_filters
from tagsight.curate.reviews import append_reviews, read_reviews
from tagsight.data.index import SampleIndex
import tagsight.cli.forgetters  # noqa: F401  (registers every artifact kind)
from tagsight.privacy.forget import forget
from tagsight.privacy.tombstones import Tombstone


def test_forget_purges_curation_reviews_and_index_files(tiny_dataset, tmp_path):
    from tagsight.apps.embedder import Embedder
    from tagsight.apps.similar import ENTRIES, SimilarApp, build_index
    from tagsight.models.backbone import create_backbone

    ds = tiny_dataset(posts=6)
    run_filters(ds, CurateConfig((FilterSpec("exposure"),)))
    index = SampleIndex.build(ds)
    append_reviews(ds, [{"key": k, "post_key": p, "reviewer": "ann", "stage": "generalist", "decision": "keep"}
                        for k, p in zip(index.keys, index.post_keys)])
    embedder = Embedder(create_backbone("test_vit", img_size=32).eval())
    build_index(ds, embedder, tmp_path / "index")
    victim = index.author_ids[0]
    report = forget([Tombstone("author", victim)], [tmp_path])
    assert report is not None
    gone = {p for p, a in zip(index.post_keys, index.author_ids) if a == victim}
    assert gone
    curation = pq.read_table(ds / "catalog" / "curation.parquet").column("post_key").to_pylist()
    assert curation and not gone & set(curation)
    assert read_reviews(ds) and not gone & {r["post_key"] for r in read_reviews(ds)}
    entries = pq.read_table(tmp_path / "index" / ENTRIES).column("post_key").to_pylist()
    assert entries and not gone & set(entries)
    fresh = SimilarApp(embedder, tmp_path / "index")
    assert len(fresh) == len(entries)   # the vectors went too, not only the rows
    again = forget([Tombstone("author", victim)], [tmp_path])   # idempotent
    assert pq.read_table(tmp_path / "index" / ENTRIES).num_rows == len(entries) and again is not None


def test_forget_takes_effect_on_a_running_server_without_restart(tiny_dataset, tmp_path):
    import base64
    import json
    import urllib.request

    from tagsight.apps.embedder import Embedder
    from tagsight.apps.similar import SimilarApp, build_index
    from tagsight.models.backbone import create_backbone
    from tagsight.serve.app import create_app
    from tagsight.serve.background import BackgroundServer

    ds = tiny_dataset(posts=6)
    index = SampleIndex.build(ds)
    embedder = Embedder(create_backbone("test_vit", img_size=32).eval())
    build_index(ds, embedder, tmp_path / "index")
    app = SimilarApp(embedder, tmp_path / "index")
    body = json.dumps({"image": base64.b64encode(index.read_jpeg(0)).decode(), "options": {"k": 20}}).encode()

    def neighbours(url):
        request = urllib.request.Request(f"{url}/v1/similar", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return {n["post_key"] for n in json.loads(response.read())["result"]["neighbours"]}

    with BackgroundServer(create_app({"similar": app})) as server:
        before = neighbours(server.url)
        assert index.post_keys[0] in before
        forget([Tombstone("author", index.author_ids[0])], [tmp_path])   # while the server runs
        after = neighbours(server.url)
    gone = {p for p, a in zip(index.post_keys, index.author_ids) if a == index.author_ids[0]}
    assert after and not gone & after and after == before - gone
