"""The catalog: Parquet tables under ``DATASET_DIR/catalog/``, queried with DuckDB.

Tables (one Parquet file each, written atomically):

- ``posts``: kept posts with every schema field (rejected posts are NOT stored here: only
  their decision is, so that a post that may not be used leaves no caption or hashtag behind);
- ``media``: every media item of a policy-eligible post, with status, reason, hashes, sizes
  and, when kept, its shard and sample key;
- ``hashtags``: hashtags of kept posts as written, one row per occurrence, with the folded form;
- ``decisions``: one row per source record: kept or rejected, stage and reason code;
- ``duplicates``: media judged exact or near duplicates of a kept media item.

Plain DuckDB reads them: ``duckdb.sql("select reason, count(*) from
'DATASET/catalog/decisions.parquet' group by 1")``; ``connect(dataset_dir)`` opens a
connection with one view per table.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from tagsight.fsio import atomic_write_bytes
from tagsight.storage import dataset_path, join, read_bytes
from tagsight.storage import exists as storage_exists

if TYPE_CHECKING:
    import duckdb

TABLES = ("posts", "media", "hashtags", "decisions", "duplicates")


def _schema(columns: list[tuple[str, pa.DataType]]) -> pa.Schema:
    return pa.schema(columns)


SCHEMAS: dict[str, pa.Schema] = {
    "posts": _schema([
        ("source", pa.string()), ("post_id", pa.string()), ("author_id", pa.string()),
        ("created_at", pa.string()), ("visibility", pa.string()), ("caption", pa.string()),
        ("hashtags", pa.list_(pa.string())), ("consent_ai_training", pa.bool_()),
        ("region", pa.string()), ("license", pa.string()), ("likes", pa.int64()),
        ("sensitive", pa.bool_()), ("content_warning", pa.string()),
        ("label", pa.string()), ("n_media", pa.int32()),
    ]),
    "media": _schema([
        ("source", pa.string()), ("post_id", pa.string()), ("media_index", pa.int32()),
        ("path", pa.string()), ("status", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
        ("sha256", pa.string()), ("phash", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
        ("source_width", pa.int32()), ("source_height", pa.int32()), ("had_gps", pa.bool_()),
        ("had_metadata", pa.bool_()), ("faces_blurred", pa.int32()), ("alt_text", pa.string()),
        ("sample_key", pa.string()), ("shard", pa.string()),
    ]),
    "hashtags": _schema([
        ("source", pa.string()), ("post_id", pa.string()), ("position", pa.int32()),
        ("tag", pa.string()), ("folded", pa.string()),
    ]),
    "decisions": _schema([
        ("ref", pa.string()), ("source", pa.string()), ("post_id", pa.string()), ("author_id", pa.string()),
        ("status", pa.string()), ("stage", pa.string()), ("reason", pa.string()), ("detail", pa.string()),
    ]),
    "duplicates": _schema([
        ("source", pa.string()), ("post_id", pa.string()), ("media_index", pa.int32()),
        ("kind", pa.string()), ("distance", pa.int32()),
        ("of_source", pa.string()), ("of_post_id", pa.string()), ("of_media_index", pa.int32()),
    ]),
}


def catalog_dir(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / "catalog"


def table_path(dataset_dir: str | Path, table: str) -> Path:
    return catalog_dir(dataset_dir) / f"{table}.parquet"


def write_table(dataset_dir: str | Path, table: str, rows: list[dict[str, Any]] | pa.Table) -> int:
    """Write ``rows`` (dicts or an Arrow table) as the whole ``table`` (atomic replace). Returns the row count."""
    schema = SCHEMAS[table]
    if isinstance(rows, pa.Table):
        arrow = _with_missing_columns(rows, schema).select(schema.names).cast(schema)
    else:
        arrow = pa.Table.from_pylist(rows, schema=schema) if rows else schema.empty_table()
    buf = io.BytesIO()
    pq.write_table(arrow, buf, compression="zstd")
    atomic_write_bytes(table_path(dataset_dir, table), buf.getvalue())
    return arrow.num_rows


def _with_missing_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with a null column for each schema column it lacks (a catalog written before the column existed)."""
    for name in schema.names:
        if name not in table.column_names:
            table = table.append_column(schema.field(name), pa.nulls(table.num_rows, schema.field(name).type))
    return table


def read_table(dataset_dir: str | Path, table: str, columns: list[str] | None = None) -> pa.Table:
    path = table_path(dataset_dir, table)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: is {dataset_dir} a tagsight dataset (made by 'tagsight ingest')?")
    return pq.read_table(path, columns=columns)


def connect(dataset_dir: str | Path, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per catalog table present."""
    import duckdb

    con = duckdb.connect(database)
    for table in TABLES:
        path = table_path(dataset_dir, table)
        if path.is_file():
            quoted = str(path).replace("'", "''")
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{quoted}')")
    return con


def load_manifest(dataset_dir: str | Path) -> dict[str, Any]:
    """The dataset's manifest.json; ``dataset_dir`` may be an fsspec URL (``s3://bucket/ds``)."""
    dataset_dir = dataset_path(dataset_dir)
    path = join(dataset_dir, "manifest.json")
    if not storage_exists(path):
        raise FileNotFoundError(f"{path} is missing: run 'tagsight ingest SOURCE --out {dataset_dir}' first")
    manifest = json.loads(read_bytes(path).decode("utf-8"))
    if not isinstance(manifest, dict):
        raise ValueError(f"{path} is not a tagsight manifest (not a JSON object)")
    return manifest


def manifest_version(dataset_dir: str | Path) -> str:
    """The dataset's content version (a hash, identical for identical inputs)."""
    return str(load_manifest(dataset_dir)["version"])


def iter_kept_hashtags(dataset_dir: str | Path) -> Iterator[tuple[str, list[str]]]:
    """(``source/post_id``, hashtags as written) for every kept post, in catalog order."""
    table = read_table(dataset_dir, "posts", ["source", "post_id", "hashtags"])
    for batch in table.to_batches():
        cols = batch.to_pydict()
        for source, post_id, tags in zip(cols["source"], cols["post_id"], cols["hashtags"]):
            yield f"{source}/{post_id}", list(tags or [])
