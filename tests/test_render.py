"""The renderer: composite rule, variants, Only-BG-T tiling, seeded background draws."""

from __future__ import annotations

import numpy as np
import pytest

from in9_builder.errors import In9Error
from in9_builder.render import (
    composite,
    draw_backgrounds,
    no_fg,
    only_bg_b,
    only_fg,
    render_variant,
    tile_background,
)
from in9_builder.scene import Scene


def _image(h=6, w=8, seed=0):
    return np.random.default_rng(seed).integers(1, 256, size=(h, w, 3), dtype=np.uint8)


def test_composite_is_fg_times_mask_plus_bg_times_one_minus_mask():
    fg, bg = _image(seed=1), _image(seed=2)
    mask = (np.random.default_rng(3).random((6, 8)) > 0.5).astype(np.uint8)
    expected = fg.astype(np.int32) * mask[..., None] + bg.astype(np.int32) * (1 - mask[..., None])
    out = composite(fg, mask, bg)
    assert out.dtype == np.uint8 and np.array_equal(out, expected.astype(np.uint8))


def test_composite_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes differ"):
        composite(_image(), np.ones((5, 8), np.uint8), _image())


def test_only_fg_and_no_fg_partition_the_image():
    image, mask = _image(), np.zeros((6, 8), np.uint8)
    mask[1:4, 2:6] = 1
    assert np.array_equal(only_fg(image, mask) + no_fg(image, mask), image)
    assert not only_fg(image, mask)[mask == 0].any() and not no_fg(image, mask)[mask == 1].any()


def test_only_bg_b_blacks_out_the_inclusive_box():
    out = only_bg_b(_image(), (2, 1, 4, 3))
    assert not out[1:4, 2:5].any()
    assert out[0].all() and out[4:].all() and out[:, :2].all() and out[:, 5:].all()


def test_tile_background_tiles_the_widest_strip_from_the_origin():
    # 6 x 10 image, box x 6..8: left margin 6 (area 36) beats top/bottom (0 rows, area 0).
    image = _image(6, 10)
    out = tile_background(image, (6, 0, 8, 5))
    strip = image[:, :6]
    tiled = np.tile(strip, (1, 2, 1))[:, :10]
    assert np.array_equal(out[:, 6:9], tiled[:, 6:9])
    assert np.array_equal(out[:, :6], image[:, :6]) and np.array_equal(out[:, 9:], image[:, 9:])


def test_tile_background_prefers_vertical_strip_only_when_strictly_larger():
    # 8 x 8, box (2,2)-(5,5): left=2, right=3, top=2, bottom=3 -> areas equal (24 = 24): the row strip wins,
    # and bottom (3) > top (2) picks image[ymax:].
    image = _image(8, 8)
    out = tile_background(image, (2, 2, 5, 5))
    strip = image[5:]
    tiled = np.tile(strip, (3, 1, 1))[:8]
    assert np.array_equal(out[2:6, 2:6], tiled[2:6, 2:6])


def test_tile_background_with_box_covering_everything_is_an_error():
    with pytest.raises(In9Error, match="covers the whole"):
        tile_background(_image(4, 4), (0, 0, 4, 4))


LABELS = {f"n0000000{c}_{i:05d}": c for c in range(9) for i in range(5)}


@pytest.mark.parametrize("variant", ["mixed_same", "mixed_rand", "mixed_next"])
def test_draws_are_a_pure_function_of_seed_and_sorted_ids(variant):
    shuffled = dict(sorted(LABELS.items(), key=lambda kv: hash(kv[0]) % 97))
    assert draw_backgrounds(3, LABELS, variant) == draw_backgrounds(3, shuffled, variant)
    assert draw_backgrounds(3, LABELS, variant) != draw_backgrounds(4, LABELS, variant)
    assert set(draw_backgrounds(3, LABELS, variant)) == set(LABELS)


def test_mixed_same_never_uses_own_background_and_stays_in_class():
    for seed in range(5):
        for fg, bg in draw_backgrounds(seed, LABELS, "mixed_same").items():
            assert bg != fg and LABELS[bg] == LABELS[fg]


def test_mixed_next_uses_class_y_plus_one_mod_9():
    for fg, bg in draw_backgrounds(0, LABELS, "mixed_next").items():
        assert LABELS[bg] == (LABELS[fg] + 1) % 9


def test_mixed_rand_draws_many_classes_never_itself():
    pairing = draw_backgrounds(0, LABELS, "mixed_rand")
    assert all(bg != fg for fg, bg in pairing.items())
    assert len({LABELS[bg] for bg in pairing.values()}) >= 6


def test_draw_rejects_non_mixed_variant_and_too_small_class():
    with pytest.raises(In9Error, match="not a mixed variant"):
        draw_backgrounds(0, LABELS, "original")
    lonely = {"a_00001": 0, "b_00001": 1}
    with pytest.raises(In9Error, match="no background image available"):
        draw_backgrounds(0, lonely, "mixed_same")


def test_render_variant_needs_a_box_for_only_bg():
    scene = Scene("x_00001", 0, _image(), np.zeros((6, 8), np.uint8), None)
    with pytest.raises(In9Error, match="needs a bounding box"):
        render_variant("only_bg_t", scene)
    with pytest.raises(In9Error, match="unknown variant"):
        render_variant("mixed_everything", scene)
