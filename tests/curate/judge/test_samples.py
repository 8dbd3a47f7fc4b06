import json

import pytest

from tagsight.curate.judge.samples import pair_samples, read_samples
from tagsight.fsio import ReasonError

from .conftest import flat, write_samples


def test_folders_pair_up_by_prompt_and_seed(before_after):
    pairs = pair_samples(*before_after)
    assert len(pairs) == 6
    assert all(p.before.key == p.after.key and p.before.path != p.after.path for p in pairs)
    assert {p.before.model["kind"] for p in pairs} == {"pretrain"} and {p.after.model["kind"] for p in pairs} == {"tune"}


def test_every_mismatch_is_reported(tmp_path, sharp):
    before = write_samples(tmp_path / "b", sharp, prompts=("#a", "#b"), per_prompt=3)
    after = write_samples(tmp_path / "a", sharp, prompts=("#a", "#c"), per_prompt=2, steps=50, kind="tune")
    with pytest.raises(ReasonError) as err:
        pair_samples(before, after)
    msg = str(err.value)
    assert err.value.reason == "unpaired_samples"
    assert "missing_after: prompt '#a' seed 2" in msg and "missing_after: prompt '#b' seed 0" in msg
    assert "missing_before: prompt '#c' seed 1" in msg
    assert "settings_mismatch: prompt '#a' seed 0: steps 20 vs 50" in msg
    assert "(8 problems)" in msg   # 1 + 3 missing after (#a seed 2, #b), 2 missing before (#c), 2 steps (#a 0, 1)


def test_guidance_size_and_pixel_size_mismatches(tmp_path, sharp):
    before = write_samples(tmp_path / "b", sharp, per_prompt=1)
    after = write_samples(tmp_path / "a", sharp, per_prompt=1, guidance=5.0, kind="tune")
    with pytest.raises(ReasonError, match="guidance 3.0 vs 5.0"):
        pair_samples(before, after)
    wrong = write_samples(tmp_path / "w", lambda p, i: flat((9, 9, 9)).resize((48, 48)), per_prompt=1, kind="tune")
    with pytest.raises(ReasonError, match="image_size: after 0000.png is 48x48 but its row says size 32"):
        pair_samples(before, wrong)


def test_bad_folders_and_rows_are_refused(tmp_path, sharp):
    with pytest.raises(ReasonError, match="no samples.jsonl") as err:
        read_samples(tmp_path)
    assert err.value.reason == "not_a_sample_dir"
    d = write_samples(tmp_path / "d", sharp, per_prompt=2)
    rows = [json.loads(line) for line in (d / "samples.jsonl").read_text().splitlines()]
    cases = [({**rows[0], "file": "../secret.png"}, "bad_samples_row"), ({**rows[0], "seed": "1"}, "bad_samples_row"),
             ({**rows[0], "file": "9999.png"}, "missing_image"), (rows[0], "duplicate_sample")]
    for bad, reason in cases:
        (d / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows + [bad]))
        with pytest.raises(ReasonError) as err:
            read_samples(d)
        assert err.value.reason == reason
