"""An export at a URL (moto's S3 server) used as a backbone: heads and bundles record ``export:<URL>``, never the
local copy it was read from."""

import json

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from tagsight.cli import main  # noqa: E402
from tagsight.storage import read_bytes  # noqa: E402
from tests.s3server import bucket, environ, moto_s3, put_folder, s3_env  # noqa: E402


def test_an_export_on_a_store_used_as_a_backbone_is_recorded_by_its_url(tmp_path, class_folders, monkeypatch,
                                                                        capsys):
    from tagsight.apps.bundle import init_bundle, load_bundle
    from tagsight.apps.export import export_bundle

    monkeypatch.setenv("TAGSIGHT_CACHE_DIR", str(tmp_path / "cache"))
    export_bundle(init_bundle(tmp_path / "bundle", "timm:test_vit"), tmp_path / "export")
    store = "s3://export-backbone"
    with moto_s3() as endpoint, environ(s3_env(endpoint)):
        bucket(store)
        put_folder(tmp_path / "export", f"{store}/exports/e")
        put_folder(class_folders(tmp_path / "photos", 4), f"{store}/photos")
        capsys.readouterr()
        assert main(["-q", "heads", "train", f"{store}/photos", "--task", "categorize", "--backbone",
                     f"{store}/exports/e", "--out", f"{store}/heads/h", "--epochs", "2",
                     "--cache-dir", str(tmp_path / "features"), "--json"]) == 0
        meta = json.loads(read_bytes(f"{store}/heads/h/head.json"))
        assert meta["backbone"] == f"export:{store}/exports/e"   # where it came from, not the local copy
        assert load_bundle(f"{store}/exports/e").backbone_spec == f"export:{store}/exports/e"
    assert str(tmp_path / "cache") not in json.dumps(meta)
