"""A manifest.json that parses but is not an object is refused with a message naming the file."""

import pytest

from tagsight.schema import catalog


def test_a_manifest_that_is_not_a_json_object_is_refused(tmp_path):
    (tmp_path / "manifest.json").write_text('["v1"]')
    with pytest.raises(ValueError, match="not a tagsight manifest"):
        catalog.load_manifest(tmp_path)


def test_manifest_version_is_the_recorded_version(tmp_path):
    (tmp_path / "manifest.json").write_text('{"version": "abc123"}')
    assert catalog.manifest_version(tmp_path) == "abc123"
