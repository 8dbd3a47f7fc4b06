import random

import pytest

from tagsight.ingest.dedup import NearIndex, find_duplicates


def flip(h, bits):
    for b in bits:
        h ^= 1 << b
    return h


def test_exact_duplicates_point_to_the_first_occurrence():
    dups = find_duplicates(["a", "b", "a", "a"], [1, 2 ** 40, 1, 1], radius=None)
    assert {i: (m.of, m.kind) for i, m in dups.items()} == {2: (0, "exact"), 3: (0, "exact")}


def test_near_duplicates_within_the_radius_and_not_beyond():
    rng = random.Random(0)
    base = rng.getrandbits(64)
    hashes = [base, flip(base, [1, 20, 40, 63]), flip(base, [1, 2, 3, 4, 5]), rng.getrandbits(64)]
    dups = find_duplicates(["a", "b", "c", "d"], hashes, radius=4)
    assert list(dups) == [1] and dups[1].of == 0 and dups[1].kind == "near" and dups[1].distance == 4


@pytest.mark.parametrize("radius", [0, 1, 3, 6, 10])
def test_multi_index_search_equals_brute_force(radius):
    rng = random.Random(radius)
    centres = [rng.getrandbits(64) for _ in range(20)]
    hashes = [flip(rng.choice(centres), rng.sample(range(64), rng.randint(0, radius + 2))) for _ in range(300)]
    index = NearIndex(radius)
    for i, h in enumerate(hashes[:150]):
        index.add(i, h)
    for h in hashes[150:]:
        brute = min(((bin(h ^ k).count("1"), i) for i, k in enumerate(hashes[:150])), default=None)
        expect = (brute[1], brute[0]) if brute and brute[0] <= radius else None
        assert index.closest(h) == expect


def test_a_duplicate_is_never_matched_to_another_duplicate():
    a = 0
    b = flip(a, [0, 1, 2])  # within 3 of a
    c = flip(b, [10, 11, 12])  # within 3 of b, 6 from a
    dups = find_duplicates(["a", "b", "c"], [a, b, c], radius=3)
    assert set(dups) == {1}  # c is compared with kept items only, so it stays


def test_radius_out_of_range_is_refused():
    with pytest.raises(ValueError, match="radius"):
        NearIndex(40)
