import pytest

from tagsight.privacy.tombstones import (Tombstone, TombstoneWatcher, Tombstones, add_tombstones, load_tombstones,
                                         tombstone_path)


def test_forgets_by_post_key_bare_id_author_and_folded_hashtag():
    t = Tombstones.of([Tombstone("post", "feed/p1"), Tombstone("post", "p9"), Tombstone("author", "alice"),
                       Tombstone("hashtag", "#No_AI")])
    assert t.forgets("feed/p1")
    assert t.forgets("other/p9")
    assert t.forgets("feed/p2", author_id="alice")
    assert t.forgets("feed/p3", author_id="bob", hashtags=["beach", "noai"])
    assert not t.forgets("feed/p2", author_id="bob", hashtags=["beach"])
    assert not Tombstones() and not Tombstones().forgets("feed/p1", "alice", ["noai"])


def test_bad_tombstones_are_refused():
    with pytest.raises(ValueError, match="kind"):
        Tombstone("caption", "x")
    with pytest.raises(ValueError, match="non-empty"):
        Tombstone("author", "  ")


def test_add_is_idempotent_and_persists(tmp_path):
    assert load_tombstones(tmp_path).rows == ()
    assert add_tombstones(tmp_path, [Tombstone("author", "alice"), Tombstone("author", "alice ")]) == 1
    assert add_tombstones(tmp_path, [Tombstone("author", "alice"), Tombstone("post", "s/p1")]) == 1
    loaded = load_tombstones(tmp_path)
    assert len(loaded) == 2 and loaded.authors == {"alice"} and loaded.posts == {"s/p1"}
    assert all(r.requested_at for r in loaded.rows)
    assert tombstone_path(tmp_path).is_file()


def test_watcher_sees_new_tombstones_without_restart(tmp_path):
    watcher = TombstoneWatcher(tmp_path)
    assert not watcher.current().forgets("s/p1")
    add_tombstones(tmp_path, [Tombstone("post", "s/p1")])
    assert watcher.current().forgets("s/p1")
    add_tombstones(tmp_path, [Tombstone("author", "bob")])
    assert watcher.current().forgets("s/p2", author_id="bob")
