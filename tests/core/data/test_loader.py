"""DeviceLoader: determinism, exact resume, augmentation against a per-sample reference, epochs, order."""
from __future__ import annotations

import io

import pytest
import torch

from core.data.loader import DeviceLoader, augment_batch, normalization_stats

N, B = 50, 8  # 7 batches per epoch, the last one holds 2 samples


def _data(n=N, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    y = torch.arange(n)  # label = sample index, so batches say which samples they hold
    return x, y


def _loader(x, y, batch=B, *, shuffle=True, augment=True, seed=0, identity=False, **kw):
    if identity:  # mean 0, std 1/255: the loader returns the raw uint8 values as floats
        mean, std = torch.zeros(3, 1, 1), torch.full((3, 1, 1), 1 / 255)
    else:
        mean, std = normalization_stats(x)
    return DeviceLoader(x, y, batch, device="cpu", shuffle=shuffle, augment=augment, mean=mean, std=std,
                        seed=seed, **kw)


def _take(loader, k):
    """k batches, continuing across epoch boundaries as a training loop would."""
    out = []
    while len(out) < k:
        for batch in loader:
            out.append(batch)
            if len(out) == k:
                break
    return out


def _equal(a, b):
    return len(a) == len(b) and all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))


def _reference_augment(img, dy, dx, flip):
    """Straightforward per-sample version of torchvision's RandomCrop(32, padding=4) + horizontal flip."""
    padded = torch.zeros(3, 40, 40, dtype=img.dtype)
    padded[:, 4:36, 4:36] = img
    crop = padded[:, dy:dy + 32, dx:dx + 32]
    return crop.flip(-1) if flip else crop


# -- determinism -----------------------------------------------------------------------------------------------


def test_same_seed_same_batches_different_seed_different():
    x, y = _data()
    a = _take(_loader(x, y, seed=1), 20)
    b = _take(_loader(x, y, seed=1), 20)
    c = _take(_loader(x, y, seed=2), 20)
    assert _equal(a, b)
    assert not torch.equal(a[0][1], c[0][1])  # a different permutation
    assert not _equal(a, c)


def test_epochs_differ():
    x, y = _data()
    loader = _loader(x, y)
    first = torch.cat([yb for _, yb in loader])
    second = torch.cat([yb for _, yb in loader])
    assert not torch.equal(first, second)


def test_loader_does_not_touch_global_rng():
    x, y = _data()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _take(_loader(x, y), 10)
    assert torch.equal(torch.rand(3), expected)


# -- exact resume --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 3, 6, 7, 8, 13, 14, 16])
def test_exact_resume(k):
    x, y = _data()
    total = 3 * 7
    reference = _take(_loader(x, y, seed=5), total)
    first = _loader(x, y, seed=5)
    head = _take(first, k)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    second = _loader(x, y, seed=5)
    second.load_state_dict(state)
    tail = _take(second, total - k)
    assert _equal(head + tail, reference)


def test_state_dict_contents_and_position():
    x, y = _data()
    loader = _loader(x, y)
    assert (loader.epoch, loader.pos) == (0, 0)
    _take(loader, 3)
    sd = loader.state_dict()
    assert (sd["epoch"], sd["pos"]) == (0, 3) and sd["gen_state"].dtype == torch.uint8
    for _ in loader:  # finish the epoch
        pass
    assert (loader.epoch, loader.pos) == (1, 0)
    _take(loader, 7)  # a loop that breaks right after the epoch's last batch
    assert loader.pos == 7
    sd = loader.state_dict()
    assert (sd["epoch"], sd["pos"]) == (2, 0)  # the next batch is the next epoch's first


def test_resume_into_a_loader_with_different_data_size_is_refused():
    x, y = _data()
    sd = _loader(x, y).state_dict()
    x2, y2 = _data(n=40)
    with pytest.raises(ValueError, match="num_samples"):
        _loader(x2, y2).load_state_dict(sd)


def test_restoring_makes_a_running_iterator_stale():
    x, y = _data()
    loader = _loader(x, y)
    sd = loader.state_dict()
    it = iter(loader)
    next(it)
    loader.load_state_dict(sd)
    assert list(it) == []  # the old loop stops instead of mixing positions
    assert loader.pos == 0


# -- augmentation --------------------------------------------------------------------------------------------


def test_augment_batch_matches_per_sample_reference():
    x, _ = _data(n=64)
    g = torch.Generator().manual_seed(0)
    dy = torch.randint(0, 9, (64,), generator=g)
    dx = torch.randint(0, 9, (64,), generator=g)
    flip = torch.randint(0, 2, (64,), generator=g).bool()
    dy[:4], dx[:4], flip[:4] = torch.tensor([0, 8, 0, 8]), torch.tensor([0, 8, 8, 0]), torch.tensor([0, 1, 0, 1]).bool()
    out = augment_batch(x, dy, dx, flip)
    assert out.dtype == torch.uint8 and out.shape == x.shape
    for i in range(64):
        assert torch.equal(out[i], _reference_augment(x[i], int(dy[i]), int(dx[i]), bool(flip[i]))), i


def test_augment_batch_is_torchvisions_random_crop_and_flip_on_pil_images():
    """The usual CIFAR loop's augmentation (RandomCrop(32, padding=4) then RandomHorizontalFlip on PIL images: pad,
    crop at (top, left), mirror) gives the same pixels for the same draws (issue 23: rules out the augmentation as a
    difference between the engine and that loop; only the order of random draws differs)."""
    import numpy as np
    import torchvision.transforms.functional as TF
    from PIL import Image

    x, _ = _data(n=32)
    g = torch.Generator().manual_seed(1)
    dy, dx = torch.randint(0, 9, (32,), generator=g), torch.randint(0, 9, (32,), generator=g)
    flip = torch.randint(0, 2, (32,), generator=g).bool()
    out = augment_batch(x, dy, dx, flip)
    for i in range(32):
        img = TF.crop(TF.pad(Image.fromarray(x[i].permute(1, 2, 0).numpy()), 4), int(dy[i]), int(dx[i]), 32, 32)
        img = TF.hflip(img) if flip[i] else img
        assert torch.equal(out[i], torch.from_numpy(np.array(img)).permute(2, 0, 1)), i


def test_centre_crop_without_flip_is_identity_and_border_is_black():
    x, _ = _data(n=2)
    same = augment_batch(x, torch.tensor([4, 4]), torch.tensor([4, 4]), torch.tensor([False, False]))
    assert torch.equal(same, x)
    corner = augment_batch(x, torch.tensor([0, 8]), torch.tensor([0, 8]), torch.tensor([False, True]))
    assert torch.count_nonzero(corner[0, :, :4, :]) == 0 and torch.count_nonzero(corner[0, :, :, :4]) == 0
    assert torch.equal(corner[0, :, 4:, 4:], x[0, :, :28, :28])
    assert torch.count_nonzero(corner[1, :, 28:, :]) == 0 and torch.count_nonzero(corner[1, :, :, :4]) == 0


def test_loader_batches_match_reference_with_drawn_offsets():
    x, y = _data()
    loader = _loader(x, y, identity=True)
    draws = loader.epoch_draws()
    assert draws["dy"].min() >= 0 and draws["dy"].max() <= 8 and draws["dx"].max() <= 8
    batches = list(loader)
    xs = torch.cat([xb for xb, _ in batches])
    ys = torch.cat([yb for _, yb in batches])
    assert torch.equal(ys, draws["perm"])
    for k in range(N):
        i = int(draws["perm"][k])
        ref = _reference_augment(x[i], int(draws["dy"][k]), int(draws["dx"][k]), bool(draws["flip"][k]))
        assert torch.equal(xs[k].round().to(torch.uint8), ref), k
        assert torch.allclose(xs[k], ref.float(), atol=1e-3)


def test_offsets_and_flips_are_spread():
    x, y = _data(n=2000)
    draws = _loader(x, y).epoch_draws()
    for key in ("dy", "dx"):
        assert draws[key].bincount(minlength=9).min() > 2000 / 9 * 0.7  # all nine offsets 0..8, about evenly
        assert draws[key].max() == 8
    assert 0.45 < draws["flip"].float().mean() < 0.55


# -- epochs, sizes, order --------------------------------------------------------------------------------------


def test_every_sample_once_per_epoch():
    x, y = _data()
    loader = _loader(x, y)
    for epoch in range(3):
        seen = torch.cat([yb for _, yb in loader])
        assert torch.equal(seen.sort().values, torch.arange(N))
        assert loader.epoch == epoch + 1 and loader.pos == 0


def test_last_partial_batch_and_drop_last():
    x, y = _data()
    loader = _loader(x, y)
    assert len(loader) == 7 and loader.num_samples == N
    assert [len(yb) for _, yb in loader] == [8] * 6 + [2]
    dropped = _loader(x, y, drop_last=True)
    assert len(dropped) == 6
    assert [len(yb) for _, yb in dropped] == [8] * 6
    with pytest.raises(ValueError, match="batch_size"):
        _loader(x, y, batch=64, drop_last=True)


def test_eval_order_and_normalisation():
    x, y = _data()
    mean, std = normalization_stats(x)
    loader = DeviceLoader(x, y, 1000, device="cpu", shuffle=False, augment=False, mean=mean, std=std)
    assert len(loader) == 1
    (xb, yb), = list(loader)
    assert torch.equal(yb, y)
    assert torch.allclose(xb, (x.float() / 255 - mean) / std, atol=1e-5)
    assert xb.dtype == torch.float32
    small = DeviceLoader(x, y, 16, device="cpu", shuffle=False, augment=False, mean=mean, std=std)
    assert torch.equal(torch.cat([b for b, _ in small]), xb)


def test_channels_last_gives_same_values():
    x, y = _data()
    plain = _take(_loader(x, y), 3)
    cl = _take(_loader(x, y, channels_last=True), 3)
    for (a, ya), (b, yb) in zip(plain, cl):
        assert b.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(a, b) and torch.equal(ya, yb)


# -- normalisation statistics --------------------------------------------------------------------------------


def test_channel_stats():
    x, _ = _data(n=300)
    x[:, 0] //= 2  # make the channels differ
    mean, std = normalization_stats(x, "channel")
    ref = x.double() / 255
    assert mean.shape == (3, 1, 1) and std.shape == (3, 1, 1) and mean.dtype == torch.float32
    assert torch.allclose(mean.double().flatten(), ref.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(std.double().flatten(), ref.transpose(0, 1).reshape(3, -1).std(1, unbiased=False), atol=1e-6)
    assert mean[0] < mean[1]


def test_pixel_stats():
    x, _ = _data(n=3000)  # more than one internal chunk
    mean, std = normalization_stats(x, "pixel")
    assert mean.shape == (3, 32, 32) and torch.equal(std, torch.ones(3, 1, 1))
    assert torch.allclose(mean.double(), (x.double() / 255).mean(0), atol=1e-6)
    with pytest.raises(ValueError):
        normalization_stats(x, "global")


def test_normalised_training_images_have_zero_mean_unit_std():
    x, y = _data(n=500)
    x[:, 2] = x[:, 2] // 4 + 100
    loader = _loader(x, y, batch=500, shuffle=False, augment=False)
    xb, _ = next(iter(loader))
    assert torch.allclose(xb.mean((0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(xb.std((0, 2, 3)), torch.ones(3), atol=1e-3)
