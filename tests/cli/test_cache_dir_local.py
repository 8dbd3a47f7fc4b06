"""``--cache-dir`` (feature and image-hash caches) is a local folder: a URL is refused with ``cache_not_local`` before
anything runs, and no local folder named after the URL is made."""

import pytest

from tagsight.cli import main


@pytest.mark.parametrize("verb", [["eval", "knn", "timm:test_vit"], ["eval", "decontaminate"], ["heads", "train"],
                                  ["relevance", "score"], ["forget", "--author", "a"]])
def test_a_cache_dir_at_a_url_is_refused(verb, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([*verb, "--cache-dir", "s3://bucket/features"])
    assert exit_.value.code == 2 and "cache_not_local" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_file_url_cache_dir_is_the_local_folder():
    from tagsight.cli.options import local_cache_folder

    assert str(local_cache_folder("file:///tmp/features")) == "/tmp/features"
