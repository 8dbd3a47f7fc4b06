import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tagsight.ingest.sources import SourceError, open_source, sniff_format
from tagsight.ingest.sources.activitypub import ActivityPubSource
from tagsight.ingest.sources.folder import FolderSource
from tagsight.ingest.sources.instagram import InstagramSource
from tagsight.ingest.sources.jsonl import JsonlSource
from tagsight.ingest.sources.parquet import ParquetSource


def test_each_fixture_is_sniffed_as_its_format(instagram_export, outbox_export, jsonl_file, class_folders,
                                                tmp_path, make):
    pq.write_table(pa.Table.from_pylist([make.post(1)]), tmp_path / "posts.parquet")
    cases = {instagram_export: "instagram", outbox_export: "activitypub", outbox_export / "outbox.json": "activitypub",
             jsonl_file: "jsonl", jsonl_file.parent: "jsonl", tmp_path / "posts.parquet": "parquet",
             class_folders: "folder"}
    assert {path: sniff_format(path) for path in cases} == cases


def test_open_source_auto_returns_the_adapter_and_passes_options(instagram_export, outbox_export, class_folders):
    assert isinstance(open_source(instagram_export, author="x"), InstagramSource)
    assert isinstance(open_source(outbox_export), ActivityPubSource)
    folder = open_source(class_folders, class_as_hashtag=True, name="pets-v1")
    assert isinstance(folder, FolderSource) and next(iter(folder)).source == "pets-v1"


def test_an_instagram_export_is_not_mistaken_for_an_image_folder(instagram_export):
    assert FolderSource.sniff(instagram_export)  # it holds images, but instagram is sniffed first
    assert sniff_format(instagram_export) == "instagram"


def test_a_json_file_is_an_outbox_only_when_it_looks_like_one(tmp_path, make):
    make.json(tmp_path / "export.json", make.outbox([make.note(1)]))
    make.json(tmp_path / "other.json", {"type": "Person"})
    assert ActivityPubSource.sniff(tmp_path / "export.json") and not ActivityPubSource.sniff(tmp_path / "other.json")


def test_unknown_things_are_a_source_error_naming_the_formats(tmp_path, harrison_like):
    (tmp_path / "data.csv").write_text("a,b\n")
    for path in (tmp_path / "data.csv", harrison_like):
        with pytest.raises(SourceError, match="--format"):
            sniff_format(path)
    assert not any(cls.sniff(tmp_path / "data.csv") for cls in (JsonlSource, ParquetSource, FolderSource))
