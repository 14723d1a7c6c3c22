"""Device-resident batches: the whole split lives on the training device as one uint8 tensor.

Why not a DataLoader: CIFAR fits in memory many times over, and per-sample Python transforms in worker
processes are what makes small ResNets input-bound. Here each epoch's randomness (permutation, crop offsets,
flip bits) is drawn at once from the loader's own seeded CPU generator, and each batch is indexed, padded,
cropped, flipped and normalised on the device with a handful of tensor ops (as in KellerJordan's
cifar10-airbench). The loader saves its position and the generator state at the start of the epoch, so a
restored loader yields exactly the batches an uninterrupted one would.

Several processes (core/train/distributed.py) each hold the whole split and draw the same randomness; ``shard`` picks
the part of every global batch this process trains (its slices of the batch, cut as ``Tensor.tensor_split``
cuts), so N processes together see exactly the batches one process would.

Augmentation matches torchvision's ``RandomCrop(32, padding=4)`` (zero padding: black) followed by
``RandomHorizontalFlip()``: crop offsets 0..8 in y and x, a flip with probability 1/2.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

PAD = 4
SIZE = 32


def normalization_stats(train_x_u8: torch.Tensor, mode: str = "channel") -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) as float32 in [0, 1] pixel units, computed from the training images.

    ``channel``: per-channel mean and std, shape (3, 1, 1) each (the usual CIFAR normalisation).
    ``pixel``: the per-pixel mean image (3, 32, 32) and std = 1 (He et al. 2016 sec. 4.2 subtracts the
    per-pixel mean). Exact: channel statistics come from per-channel histograms of the uint8 values, the
    pixel mean from float32 sums of 1024-image chunks (exact integers), so 50k images never need a float copy.
    """
    if mode not in ("channel", "pixel"):
        raise ValueError(f"normalization mode must be 'channel' or 'pixel', got {mode!r}")
    n, c = train_x_u8.shape[:2]
    if n == 0:
        raise ValueError("cannot compute normalisation statistics of an empty training set")
    x = train_x_u8.to("cpu")
    if mode == "pixel":
        total = torch.zeros(x[0].numel(), dtype=torch.float64)
        for chunk in x.split(1024):
            total += chunk.reshape(len(chunk), -1).to(torch.float32).sum(0)
        mean = (total / n / 255.0).view(x.shape[1:])
        return mean.float(), torch.ones(c, 1, 1)
    values = torch.arange(256, dtype=torch.float64)
    mean_c, std_c = torch.empty(c, dtype=torch.float64), torch.empty(c, dtype=torch.float64)
    for i in range(c):
        hist = torch.bincount(x[:, i].reshape(-1), minlength=256).to(torch.float64)
        p = hist / hist.sum()
        mean_c[i] = (p * values).sum()
        std_c[i] = (p * (values - mean_c[i]) ** 2).sum().sqrt()
    mean = (mean_c / 255.0).float().view(c, 1, 1)
    std = (std_c / 255.0).float().clamp_min(1e-6).view(c, 1, 1)
    return mean, std


def augment_batch(x_u8: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Zero-pad by 4, crop 32x32 at per-sample offsets (dy, dx in 0..8), then flip where ``flip``; uint8 in/out.

    One pad and one gather for the whole batch: the flip is folded into the column index.
    """
    b, c, h, w = x_u8.shape
    padded = F.pad(x_u8, (PAD, PAD, PAD, PAD))
    hp, wp = h + 2 * PAD, w + 2 * PAD
    ar_h = torch.arange(h, device=x_u8.device)
    ar_w = torch.arange(w, device=x_u8.device)
    rows = dy.view(b, 1) + ar_h  # (b, h)
    cols = dx.view(b, 1) + torch.where(flip.view(b, 1), (w - 1) - ar_w, ar_w)  # (b, w)
    lin = (rows.view(b, h, 1) * wp + cols.view(b, 1, w)).view(b, 1, h * w).expand(b, c, h * w)
    return padded.view(b, c, hp * wp).gather(2, lin).view(b, c, h, w)


class DeviceLoader:
    """Batches of (normalised float images, int64 labels) from a split held on ``device``.

    ``for x, y in loader`` yields from the current position to the end of the epoch; then ``epoch`` advances.
    ``pos`` counts the batches already yielded in the current epoch. Evaluation: shuffle=False, augment=False
    gives the split in order. ``batch_size``, positions and the saved state count global batches; with a
    ``shard`` (first, count, slices) each batch yields only slices first..first+count-1 of the global batch cut
    into ``slices``, and ``last_total`` is the size of the global batch the last yield came from.
    """

    def __init__(self, x_u8: torch.Tensor, y: torch.Tensor, batch_size: int, *, device: torch.device | str,
                 shuffle: bool, augment: bool, mean: torch.Tensor, std: torch.Tensor, seed: int = 0,
                 drop_last: bool = False, channels_last: bool = False):
        if x_u8.dtype != torch.uint8 or x_u8.dim() != 4:
            raise ValueError(f"images must be a uint8 (N, C, H, W) tensor, got {x_u8.dtype} {tuple(x_u8.shape)}")
        if len(y) != len(x_u8):
            raise ValueError(f"{len(x_u8)} images but {len(y)} labels")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.x = x_u8.to(self.device).contiguous()
        self.y = y.to(self.device, torch.int64)
        self.num_samples = len(self.y)
        self.batch_size = batch_size
        self.shuffle, self.augment, self.drop_last = shuffle, augment, drop_last
        self.channels_last = channels_last
        self.seed = seed
        self._n_batches = self.num_samples // batch_size if drop_last else math.ceil(self.num_samples / batch_size)
        if self._n_batches == 0 and self.num_samples:
            raise ValueError(f"batch_size {batch_size} is larger than the {self.num_samples} samples with drop_last")
        # x_f = x_u8 * scale - shift  ==  (x_u8 / 255 - mean) / std, folded into one multiply and one subtract.
        mean = mean.to(self.device, torch.float32)
        std = std.to(self.device, torch.float32)
        self._scale = (1.0 / (255.0 * std)).contiguous()
        self._shift = (mean / std).contiguous()
        self._gen = torch.Generator(device="cpu")
        self._gen.manual_seed(seed)
        self._start_state = self._gen.get_state()  # generator state at the start of the current epoch
        self._next_state = self._start_state  # state after drawing the current epoch
        self._draws: tuple[torch.Tensor, ...] | None = None
        self._token: object | None = None
        self.epoch = 0
        self.pos = 0
        self.shard = (0, 1, 1)
        self.last_total = 0

    def __len__(self) -> int:
        return self._n_batches

    def rebatch(self, batch_size: int) -> None:
        """Evaluation in smaller batches from now on (after an out-of-memory); the next pass starts at the first."""
        self.batch_size, self.pos = batch_size, 0
        n = self.num_samples
        self._n_batches = max(1, n // batch_size) if self.drop_last else math.ceil(n / batch_size)

    # -- randomness --------------------------------------------------------------------------------------
    def _draw_epoch(self) -> tuple[torch.Tensor, ...]:
        """(perm, dy, dx, flip) for the whole current epoch, always drawn from the epoch's start state."""
        if self._draws is None:
            self._gen.set_state(self._start_state)
            n = self.num_samples
            perm = torch.randperm(n, generator=self._gen) if self.shuffle else torch.arange(n)
            if self.augment:
                offsets = torch.randint(0, 2 * PAD + 1, (2, n), generator=self._gen)
                flip = torch.randint(0, 2, (n,), generator=self._gen).bool()
                dy, dx = offsets[0], offsets[1]
            else:
                dy = dx = flip = torch.empty(0)
            self._next_state = self._gen.get_state()
            self._draws = tuple(t.to(self.device) for t in (perm, dy, dx, flip))
        return self._draws

    def epoch_draws(self) -> dict[str, torch.Tensor]:
        """This epoch's permutation and augmentation parameters (CPU tensors; for tests and debugging)."""
        perm, dy, dx, flip = self._draw_epoch()
        return {"perm": perm.cpu(), "dy": dy.cpu(), "dx": dx.cpu(), "flip": flip.cpu()}

    def _advance_epoch(self) -> None:
        self._draw_epoch()
        self._start_state = self._next_state
        self._draws = None
        self.epoch += 1
        self.pos = 0

    # -- batches -----------------------------------------------------------------------------------------
    def shard_range(self, total: int) -> tuple[int, int]:
        """This process's part [start, end) of a global batch of ``total`` images."""
        first, count, slices = self.shard
        q, r = divmod(total, slices)
        return first * q + min(first, r), (first + count) * q + min(first + count, r)

    def _batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        perm, dy, dx, flip = self._draw_epoch()
        s, e = i * self.batch_size, min((i + 1) * self.batch_size, self.num_samples)
        self.last_total = e - s
        if self.shard != (0, 1, 1):
            a, b = self.shard_range(e - s)
            s, e = s + a, s + b
        if self.shuffle:
            idx = perm[s:e]
            xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
        else:
            xb, yb = self.x[s:e], self.y[s:e]
        if self.augment:
            xb = augment_batch(xb, dy[s:e], dx[s:e], flip[s:e])
        xf = xb.to(torch.float32)
        if self.channels_last:
            xf = xf.contiguous(memory_format=torch.channels_last)
        xf = xf.mul_(self._scale).sub_(self._shift)
        return xf, yb

    def sample_batch(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The current epoch's first batch (this process's share of it), or None when the split holds no full batch;
        the position is left where it was. Shapes for compiling before training (core/train/trainer.py)."""
        if self.num_samples < self.batch_size:
            return None
        last_total = self.last_total
        try:
            return self._batch(0)
        finally:
            self.last_total = last_total

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.pos >= self._n_batches:  # the previous loop stopped right after an epoch's last batch
            self._advance_epoch()
        token = self._token = object()
        return self._iterate(token, self.epoch)

    def _iterate(self, token: object, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while self.pos < self._n_batches:
            batch = self._batch(self.pos)
            self.pos += 1
            yield batch
            if self._token is not token or self.epoch != epoch:
                return  # restored or restarted elsewhere: this iterator is stale
        self._token = None
        self._advance_epoch()

    # -- resume --------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Position and generator state; plain ints and a ByteTensor (torch.load(weights_only=True) safe)."""
        epoch, pos, state = self.epoch, self.pos, self._start_state
        if pos >= self._n_batches:  # epoch fully consumed: the next batch is the next epoch's first
            self._draw_epoch()
            epoch, pos, state = epoch + 1, 0, self._next_state
        return {"epoch": epoch, "pos": pos, "gen_state": state.clone(),
                "num_samples": self.num_samples, "batch_size": self.batch_size}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for key in ("num_samples", "batch_size"):
            if key in sd and int(sd[key]) != getattr(self, key):
                raise ValueError(f"loader state was saved with {key}={int(sd[key])}, this loader has "
                                 f"{getattr(self, key)}")
        pos = int(sd["pos"])
        if not 0 <= pos <= self._n_batches:
            raise ValueError(f"loader position {pos} is outside 0..{self._n_batches}")
        self.epoch, self.pos = int(sd["epoch"]), pos
        self._start_state = sd["gen_state"].detach().to("cpu", torch.uint8).clone()
        self._next_state = self._start_state
        self._draws = None
        self._token = None
