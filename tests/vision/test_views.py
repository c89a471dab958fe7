"""Batched image views: shapes, value ranges, reproducibility from a generator, validity of jigsaw permutations."""
import pytest
import torch

from graphcl.vision import views as V


@pytest.fixture(scope="module", autouse=True)
def _one_thread(single_thread):
    yield


def images(c=3, b=6, h=16, w=16, seed=0):
    return torch.rand(b, c, h, w, generator=torch.Generator().manual_seed(seed))


def gen(seed=1):
    return torch.Generator().manual_seed(seed)


PHOTOMETRIC = {
    "color_jitter": lambda x, g: V.color_jitter(x, p=1.0, generator=g),
    "random_grayscale": lambda x, g: V.random_grayscale(x, p=0.5, generator=g),
    "gaussian_blur": lambda x, g: V.gaussian_blur(x, p=1.0, generator=g),
    "solarize": lambda x, g: V.solarize(x, p=0.5, generator=g),
    "horizontal_flip": lambda x, g: V.horizontal_flip(x, p=0.5, generator=g),
}


@pytest.mark.parametrize("name", sorted(PHOTOMETRIC))
@pytest.mark.parametrize("c", [1, 3])
def test_photometric_shape_range_reproducible(name, c):
    x = images(c)
    fn = PHOTOMETRIC[name]
    a, b = fn(x, gen(3)), fn(x, gen(3))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, b)  # same generator state -> same output
    if not (name in ("random_grayscale",) and c == 1):
        assert not torch.equal(fn(x, gen(4)), a) or not torch.equal(a, x)


def test_crop_shapes_range_reproducible():
    x = images(3, h=20, w=24)
    a = V.random_resized_crop(x, 12, flip_p=0.5, generator=gen())
    assert a.shape == (6, 3, 12, 12) and a.min() >= 0 and a.max() <= 1
    assert torch.equal(a, V.random_resized_crop(x, 12, flip_p=0.5, generator=gen()))
    assert V.random_resized_crop(x, (10, 7), generator=gen()).shape == (6, 3, 10, 7)


def test_full_crop_is_identity_and_flip_mirrors():
    x = images(1)
    same = V.random_resized_crop(x, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=gen())
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    flipped = V.random_resized_crop(x, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip_p=1.0, generator=gen())
    torch.testing.assert_close(flipped, x.flip(-1), atol=1e-5, rtol=0)


def test_probability_zero_is_identity_and_one_acts_on_all():
    x = images(3)
    for fn in (V.color_jitter, V.random_grayscale, V.gaussian_blur, V.solarize, V.horizontal_flip):
        assert torch.equal(fn(x, p=0.0, generator=gen()), x)
    gray = V.random_grayscale(x, p=1.0, generator=gen())
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    assert torch.equal(V.solarize(x, 0.5, p=1.0, generator=gen()), torch.where(x >= 0.5, 1 - x, x))


def test_blur_preserves_constant_images_and_smooths():
    x = torch.full((2, 3, 12, 12), 0.3)
    torch.testing.assert_close(V.gaussian_blur(x, p=1.0, generator=gen()), x)
    noise = images(1, h=32, w=32)
    blurred = V.gaussian_blur(noise, sigma=(1.5, 1.5), kernel_size=7, p=1.0, generator=gen())
    assert blurred.std() < noise.std() / 2


def test_hsv_round_trip():
    x = images(3, b=4)
    torch.testing.assert_close(V.hsv_to_rgb(V.rgb_to_hsv(x)), x, atol=1e-5, rtol=0)
    # pure red has hue 0, green 1/3, blue 2/3
    prim = torch.eye(3).view(3, 3, 1, 1)
    torch.testing.assert_close(V.rgb_to_hsv(prim)[:, 0, 0, 0], torch.tensor([0.0, 1 / 3, 2 / 3]))


def test_jitter_hue_shift_only_rotates_hue():
    x = images(3, b=4)
    y = V.color_jitter(x, brightness=0, contrast=0, saturation=0, hue=0.5, p=1.0, generator=gen())
    hx, hy = V.rgb_to_hsv(x), V.rgb_to_hsv(y)
    torch.testing.assert_close(hy[:, 2], hx[:, 2], atol=1e-5, rtol=0)  # value unchanged


@pytest.mark.parametrize("patch", [None, 3])
def test_jigsaw_permutations_valid(patch):
    b, grid = 5, 3
    x = torch.arange(b * 13 * 13, dtype=torch.float32).view(b, 1, 13, 13) / (b * 169)
    patches, perm = V.jigsaw(x, grid, patch, generator=gen())
    t = 13 // grid
    p = patch or t
    assert patches.shape == (b, grid * grid, 1, p, p) and perm.shape == (b, grid * grid)
    assert torch.equal(perm.sort(1).values, torch.arange(9).expand(b, 9))  # each row a permutation
    assert not torch.equal(perm, torch.arange(9).expand(b, 9))  # and actually shuffled
    for i in range(b):  # patch j comes from tile perm[i, j], inside it
        for j in range(grid * grid):
            r, c = divmod(int(perm[i, j]), grid)
            tile = x[i, 0, r * t:(r + 1) * t, c * t:(c + 1) * t]
            windows = tile.unfold(0, p, 1).unfold(1, p, 1).reshape(-1, p, p)
            assert (windows == patches[i, j, 0]).all((1, 2)).any()
    again, perm2 = V.jigsaw(x, grid, patch, generator=gen())
    assert torch.equal(again, patches) and torch.equal(perm, perm2)


def test_pipeline_multicrop_shapes():
    x = images(3, b=4, h=32, w=32)
    views = V.ImageViews(size=24, num_local=3, local_size=12, blur_p=(1.0, 0.1), solarize_p=(0.0, 0.2))
    out = views(x, gen())
    assert [tuple(v.shape) for v in out] == [(4, 3, 24, 24)] * 2 + [(4, 3, 12, 12)] * 3
    assert all(v.min() >= 0 and v.max() <= 1 for v in out)
    assert all(torch.equal(a, b) for a, b in zip(out, views(x, gen())))
    assert V.ImageViews()(images(1, h=8, w=8), gen())[0].shape == (6, 1, 8, 8)


def test_generator_on_cpu_drives_any_device():
    x = images(3)
    a = V.ImageViews(size=8, blur_p=0.5, solarize_p=0.5)(x, gen(7))
    b = V.ImageViews(size=8, blur_p=0.5, solarize_p=0.5)(x, gen(7))
    assert all(torch.equal(u, v) for u, v in zip(a, b))


@pytest.mark.parametrize("call, match", [
    (lambda: V.random_resized_crop(torch.rand(2, 2, 8, 8), 4), "x must be"),
    (lambda: V.random_resized_crop(torch.rand(2, 3, 8, 8), 4, scale=(0.5, 0.1)), "scale"),
    (lambda: V.color_jitter(torch.rand(2, 3, 8, 8), p=1.5), "p must"),
    (lambda: V.gaussian_blur(torch.rand(2, 3, 8, 8), kernel_size=4), "kernel_size"),
    (lambda: V.jigsaw(torch.rand(2, 1, 9, 9), 3, patch_size=4), "patch_size"),
    (lambda: V.solarize(torch.zeros(2, 3, 8, 8, dtype=torch.uint8)), "float"),
])
def test_bad_input_one_line_value_error(call, match):
    with pytest.raises(ValueError, match=match) as e:
        call()
    assert "\n" not in str(e.value)
