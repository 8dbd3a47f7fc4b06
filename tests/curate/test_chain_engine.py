"""curate filter on an engine: per-sample filters by blocks on the local pool or Ray, the same table as in-process."""

from __future__ import annotations

import json

import pytest
from PIL import ImageFilter

from tagsight.cli import main
from tagsight.curate import chain
from tagsight.curate.chain import CURATION_FILE, CURATION_INFO, CurateConfig, FilterSpec, run_filters
from tagsight.engines import EngineConfig, create_engine

CHAIN = CurateConfig((FilterSpec("resolution", {"min_side": 60}), FilterSpec("popularity", {"min_likes": 1}),
                      FilterSpec("blur"), FilterSpec("exposure"), FilterSpec("colourfulness")))


@pytest.fixture
def dataset(tiny_dataset, make_photo):
    def draw(n):
        img = make_photo(n, (96, 72) if n % 5 else (48, 40))  # every fifth photo too small
        return img.filter(ImageFilter.GaussianBlur(3)) if n % 3 == 0 else img  # every third blurred
    return tiny_dataset(posts=8, pictures=draw, max_side=96)


def outcome(ds):
    info = json.loads((ds / CURATION_INFO).read_text())
    info.pop("seconds")
    return (ds / CURATION_FILE).read_bytes(), info


def test_per_sample_filters_on_the_local_pool_give_the_same_table_as_in_process(dataset, monkeypatch):
    run_filters(dataset, CHAIN)
    alone = outcome(dataset)
    monkeypatch.setattr(chain, "BLOCK", 2)  # several blocks from a tiny dataset
    with create_engine(EngineConfig(workers=2)) as engine:
        info = run_filters(dataset, CHAIN, engine=engine)
    assert outcome(dataset) == alone
    assert info["passed"] + sum(info["rejected"].values()) == info["samples"] == 12
    assert {"low_resolution", "blurry"} <= set(info["rejected"])


def test_only_filters_that_score_one_sample_alone_go_to_the_engine():
    from tagsight.curate.filters import FILTERS

    per_sample = {name for name in FILTERS.names()
                  if chain._per_sample(object.__new__(FILTERS.get(name)), FilterSpec(name))}  # no model is loaded
    assert per_sample == {"resolution", "exposure", "contrast", "colourfulness", "blur", "text"}


ray = pytest.importorskip("ray", reason="the ray engine needs the ray extra: pip install 'tagsight[ray]'")


@pytest.mark.ray
def test_ray_gives_the_same_table_from_the_cli(dataset, tmp_path, capsys):
    run_filters(dataset, CHAIN)
    alone = outcome(dataset)
    config = tmp_path / "chain.yaml"
    config.write_text(json.dumps(CHAIN.to_dict()))
    assert main(["curate", "filter", str(dataset), "--config", str(config), "--engine", "ray", "--workers", "2",
                 "--json"]) == 0
    assert outcome(dataset) == alone
    assert '"samples": 12' in capsys.readouterr().out
