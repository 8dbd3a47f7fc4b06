"""The vocabulary report: one self-contained HTML file with coverage, merges, drops, tail, sampling."""

from __future__ import annotations

import re
from pathlib import Path

from tagsight.report.vocab import write_vocab_report
from tagsight.tags.config import VocabConfig
from tagsight.tags.vocab import Vocabulary, build_vocab

POSTS = ([("a", ["#brownbear", "#ursusarctos", "#love"])] * 5 + [("b", ["#dog", "#dogsofinstagram"])] * 3
         + [("c", ["#cake", "#paris", "#❤️"])] * 2 + [("d", ["#throwbackthursday"])])


def test_report_is_self_contained_and_has_every_section(tmp_path: Path) -> None:
    vocab = build_vocab(POSTS, VocabConfig(min_count=1))
    page = write_vocab_report(vocab, tmp_path / "report.html").read_text(encoding="utf-8")
    assert re.findall(r"""(?:src|href)\s*=\s*["'](?!data:)""", page) == []
    assert page.count("data:image/png;base64,") == 3           # drops, long tail, sampling
    for heading in ("Coverage", "Labels", "Top merges", "Drops by reason", "Long tail",
                    "Effective label distribution under sampling", "Ambiguous hashtags"):
        assert f"<h2>{heading}</h2>" in page
    assert vocab.version in page
    assert "#ursusarctos (5)" in page                           # a merge is listed with its members
    assert "place_name" in page and "#paris (2)" in page         # a drop with its example
    assert "90.9%" in page                                      # coverage: 10 of 11 posts


def test_report_of_a_loaded_vocabulary_explains_missing_sampling(tmp_path: Path) -> None:
    vocab = build_vocab(POSTS, VocabConfig(min_count=1))
    loaded = Vocabulary.load(vocab.save(tmp_path))
    page = write_vocab_report(loaded, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "loaded without its build input" in page
    assert page.count("data:image/png;base64,") == 2
