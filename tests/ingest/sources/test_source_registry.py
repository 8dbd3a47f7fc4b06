"""SOURCES holds the Source classes; source_class gives a format's class for its class-level hooks."""

import pytest

from tagsight.ingest.sources import SOURCES, Source, source_class
from tagsight.ingest.sources.jsonl import JsonlSource


def test_source_class_is_the_registered_class_with_its_hooks():
    assert source_class("jsonl") is JsonlSource
    assert all(issubclass(source_class(fmt), Source) for fmt in SOURCES.names())
    assert "author" in source_class("twitter").user_options


def test_an_unknown_format_names_the_known_ones():
    with pytest.raises(KeyError, match="did you mean 'jsonl'"):
        source_class("jsonll")


def test_a_factory_that_is_not_a_source_class_is_refused():
    SOURCES.register("test-not-a-class")(lambda path: None)
    try:
        with pytest.raises(TypeError, match="not a Source class"):
            source_class("test-not-a-class")
    finally:
        SOURCES._items.pop("test-not-a-class")
