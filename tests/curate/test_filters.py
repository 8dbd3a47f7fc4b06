import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from tagsight.curate.filters import FILTERS, Candidate
from tagsight.curate.filters.aesthetic import RidgeHead, aesthetic_prior
from tagsight.curate.filters.blur import laplacian_variance


def cand(img: Image.Image, key="k", **kw) -> Candidate:
    return Candidate(key, f"s/{key}", lambda: img, **kw)


def scores(name, img, **settings):
    flt = FILTERS.create(name, **settings)
    c = cand(img)
    flt.prepare([c])
    s = flt.score(c)
    return s, flt.reject(s)


def test_a_blurred_photo_scores_as_blurred_and_the_sharp_one_passes(make_photo):
    photo = make_photo
    sharp = photo()
    blurred = sharp.filter(ImageFilter.GaussianBlur(3))
    s_sharp, why_sharp = scores("blur", sharp)
    s_blur, why_blur = scores("blur", blurred)
    assert s_blur["laplacian_var"] < s_sharp["laplacian_var"] / 10
    assert why_sharp is None and why_blur == "blurry"


def test_laplacian_variance_of_flat_and_checkerboard(make_photo):
    assert laplacian_variance(np.full((16, 16), 0.5)) == 0.0
    checker = (np.indices((16, 16)).sum(0) % 2).astype(np.float32)
    assert laplacian_variance(checker) == pytest.approx((4 * 255.0) ** 2, rel=1e-6)


def test_dark_bright_flat_and_grey_photos_get_their_reasons(make_photo):
    photo = make_photo
    good = photo()
    assert scores("exposure", good)[1] is None
    assert scores("exposure", Image.eval(good, lambda v: v // 8))[1] == "underexposed"
    assert scores("exposure", Image.eval(good, lambda v: 235 + v // 12))[1] == "overexposed"
    assert scores("contrast", good)[1] is None
    assert scores("contrast", Image.new("RGB", (64, 64), (120, 110, 100)))[1] == "low_contrast"
    assert scores("colourfulness", good)[1] is None
    grey, why = scores("colourfulness", good.convert("L").convert("RGB"))
    assert grey["colourfulness"] < 1.0 and why == "dull_colour"


def test_a_text_image_scores_as_text_heavy_and_a_photo_does_not(make_photo):
    photo = make_photo
    pytest.importorskip("rapidocr_onnxruntime")
    poster = Image.new("RGB", (160, 120), (235, 225, 200))
    draw = ImageDraw.Draw(poster)
    font = ImageFont.load_default(size=16)
    for y in range(4, 116, 20):
        draw.text((4, y), "SALE 50% OFF", fill=(10, 10, 10), font=font)
    text, why_text = scores("text", poster)
    clean, why_clean = scores("text", photo())
    assert text["text_boxes"] >= 3 and text["text_fraction"] > 0.3 and why_text == "text_heavy"
    assert clean["text_fraction"] < 0.1 and why_clean is None


def test_resolution_uses_the_original_size_from_the_catalog(make_photo):
    photo = make_photo
    img = photo()
    small = FILTERS.create("resolution", min_side=200)
    assert small.reject(small.score(cand(img, media={"source_width": 640, "source_height": 480}))) is None
    assert small.reject(small.score(cand(img, media={"source_width": 300, "source_height": 150}))) == "low_resolution"
    assert small.reject(small.score(cand(img, media={"source_width": 1000, "source_height": 300}))) == "extreme_aspect"


def test_near_duplicates_keep_the_most_liked_one(make_photo):
    photo = make_photo
    flt = FILTERS.create("near_duplicates", radius=4)
    a = cand(photo(), "a", media={"phash": "00000000000000ff"}, post={"likes": 1})
    b = cand(photo(), "b", media={"phash": "00000000000000fe"}, post={"likes": 9})
    c = cand(photo(), "c", media={"phash": "ffffffff00000000"}, post={"likes": 0})
    flt.prepare([a, b, c])
    assert [flt.reject(flt.score(x)) for x in (a, b, c)] == ["near_duplicate", None, None]


def test_popularity_skips_posts_without_likes_and_ranks_the_rest(make_photo):
    photo = make_photo
    flt = FILTERS.create("popularity", min_percentile=0.5)
    cs = [cand(photo(), str(i), post={"likes": i}) for i in range(4)] + [cand(photo(), "x", post={"likes": None})]
    assert not flt.applies(cs[-1])
    flt.prepare(cs)
    assert [flt.reject(flt.score(c)) for c in cs[:4]] == ["unpopular", "unpopular", None, None]


def test_moderation_without_an_app_applies_to_nothing_and_with_one_blocks(make_photo):
    photo = make_photo
    class Mod:
        def predict(self, images):
            return [{"decision": "block" if im.getpixel((0, 0))[0] > 128 else "allow", "scores": {"nsfw": 0.9}}
                    for im in images]

    assert not FILTERS.create("moderation").applies(cand(photo()))
    flt = FILTERS.create("moderation", app=Mod())
    red, blue = cand(Image.new("RGB", (8, 8), (255, 0, 0)), "r"), cand(Image.new("RGB", (8, 8), (0, 0, 255)), "b")
    flt.prepare([red, blue])
    assert [flt.reject(flt.score(c)) for c in (red, blue)] == ["moderation_flagged", None]


def test_aesthetic_prior_prefers_a_sharp_colourful_photo(make_photo):
    photo = make_photo
    good = photo()
    assert aesthetic_prior(cand(good)) > aesthetic_prior(cand(good.filter(ImageFilter.GaussianBlur(4)).convert("L")))
    assert 0.0 <= aesthetic_prior(cand(Image.new("RGB", (32, 32)))) <= 1.0


def test_ridge_head_recovers_a_linear_rating_and_round_trips(tmp_path, make_photo):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = 3 + x @ rng.normal(size=8) * 0.3
    head = RidgeHead.fit(x, y, l2=1e-6, backbone="timm:resnet18", img_size=32)
    assert np.abs(head.predict(x) - y).max() < 1e-3
    loaded = RidgeHead.load(head.save(tmp_path / "h.json"))
    assert np.allclose(loaded.predict(x), head.predict(x))
    with pytest.raises(ValueError, match="at least 2"):
        RidgeHead.fit(x[:1], y[:1], 1.0, "timm:resnet18", 32)


def test_bad_settings_fail_at_construction(make_photo):
    with pytest.raises(ValueError, match="min_side"):
        FILTERS.create("resolution", min_side=0)
    with pytest.raises(KeyError, match="did you mean 'blur'"):
        FILTERS.create("blurr")
    with pytest.raises(TypeError):
        FILTERS.create("blur", sharpness=3)
