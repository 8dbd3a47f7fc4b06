"""Every training stream extends ``PostStream``; transforms that decode bytes declare ``EncodedTransform``."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

from tagsight.data.multicrop import MultiCropConfig, MultiCropTransform
from tagsight.data.pipeline import HashtagStream, PostStream, batch_normalizer
from tagsight.data.transforms import EncodedTransform, eval_transform, train_transform
from tagsight.data.views import UniformStream, ViewStream
from tagsight.generate.data import TokenStream


class DataConfig:
    input_size, mean, std = 16, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def test_each_stream_extends_the_base_not_another_stream():
    for stream in (HashtagStream, ViewStream, TokenStream):
        assert issubclass(stream, PostStream)
    assert not issubclass(ViewStream, HashtagStream) and not issubclass(TokenStream, ViewStream)
    assert issubclass(ViewStream, UniformStream) and issubclass(TokenStream, UniformStream)


def test_constructor_signatures_are_unchanged():
    params = {cls: list(inspect.signature(cls.__init__).parameters) for cls in (HashtagStream, ViewStream, TokenStream)}
    assert params[HashtagStream] == ["self", "index", "vocab", "transform", "cfg", "rank", "world_size"]
    assert params[ViewStream] == ["self", "index", "vocab", "transform", "cfg", "select", "rank", "world_size"]
    assert params[TokenStream] == ["self", "index", "table", "transform", "cfg", "select", "captions", "rank",
                                   "world_size"]


def test_encoded_transforms_are_declared_and_normalise_per_batch():
    for transform in (train_transform(DataConfig()), eval_transform(DataConfig())):
        assert isinstance(transform, EncodedTransform) and transform.accepts_encoded
        assert batch_normalizer(SimpleNamespace(transform=transform)) == transform.normalize_batch
    views = MultiCropTransform(DataConfig(), MultiCropConfig(global_size=16, local_size=8))
    assert not isinstance(views, EncodedTransform)
    assert batch_normalizer(SimpleNamespace(transform=views)) is None
    assert batch_normalizer(SimpleNamespace(transform=lambda img, generator: img)) is None
