"""forget reaches the decontamination reports that name pool posts (transfer results, eval decontaminate --out)."""

import json

import tagsight.cli.forgetters  # noqa: F401  (registers every kind)
from tagsight.eval.forget_reports import affected, find, purge
from tagsight.privacy.forget import Forgotten
from tagsight.privacy.tombstones import Tombstones


def report(matches):
    return {"metrics": {"top1": 0.9}, "decontamination": {
        "train": {"found": len(matches), "matches": matches}, "val": {"found": 0, "matches": []}}}


def test_matches_of_a_forgotten_post_are_removed_and_the_rest_kept(tmp_path):
    path = tmp_path / "run" / "transfer" / "linear-photos.json"
    path.parent.mkdir(parents=True)
    gone, kept = {"image": "a.jpg", "pool": "feed/p1#0"}, {"image": "b.jpg", "pool": "feed/p2#0"}
    path.write_text(json.dumps(report([gone, kept])))
    (tmp_path / "other.json").write_text(json.dumps({"matches": "not a list of pool matches"}))
    forgotten = Forgotten(Tombstones(), frozenset({"feed/p1"}))
    assert find(tmp_path) == [path] and affected(path, forgotten) == 1
    assert purge(path, forgotten) == "removed 1 match(es) of forgotten posts"
    train = json.loads(path.read_text())["decontamination"]["train"]
    assert train["matches"] == [kept] and train["forgotten_matches_removed"] == 1 and train["found"] == 2
    assert affected(path, forgotten) == 0
