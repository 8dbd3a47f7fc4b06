"""tagsight forget reaches the curation table, review decisions and similar-image indexes on disk."""

import pyarrow.parquet as pq

from tagsight.curate.chain import CurateConfig, FilterSpec, run_filters
from tagsight.curate.reviews import append_reviews, read_reviews
from tagsight.data.index import SampleIndex
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
