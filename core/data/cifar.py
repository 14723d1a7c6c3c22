"""Data sets as whole uint8 tensors: CIFAR-10, CIFAR-100 (read from the official python batches) and synthetic.

Why a reader of our own: torchvision's ``CIFAR10`` class refuses copies whose files differ from the official
checksums (such as ../shared's JPEG-derived copy), and the device loader wants one tensor per split anyway.
torchvision is used only to download (checksum verified) when the data is missing.

Splits are deterministic and independent of the run's seed, so every run compares on the same images:
subsets (``max_train_images``, ``max_test_images``) and the validation split (``val_split``, the paper's 45k/5k
analysis split) are stratified, taken in a fixed pseudo-random order within each class.
"""
from __future__ import annotations

import pickle
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.data.datasets import (
    CIFAR,
    CifarSpec,
    DataError,
    locate,
    missing_message,
    resolve_data_dir,
)
from core.data.plan import SYNTHETIC_SIZES

SPLIT_SEED = 20160610  # fixed: subsets and the validation split never depend on the run's seed
SYNTHETIC_SEED = 1234


@dataclass
class DataSplits:
    """One data set held in memory: images uint8 (N, 3, 32, 32) on the CPU, labels int64 (N,)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    val_x: torch.Tensor | None
    val_y: torch.Tensor | None
    classes: list[str]
    num_classes: int
    name: str
    source: str


def load_data(cfg: Any) -> DataSplits:
    """Load cfg.dataset with the subsets and validation split that cfg asks for. Raises DataError."""
    if cfg.dataset == "synthetic":
        train_x, train_y, test_x, test_y, classes = synthetic_data(cfg.max_train_images or SYNTHETIC_SIZES[0],
                                                                   cfg.max_test_images or SYNTHETIC_SIZES[1])
        name, source, max_train, max_test = "synthetic", "synthetic", 0, 0
    elif cfg.dataset in CIFAR:
        spec = CIFAR[cfg.dataset]
        folder = find_cifar(spec, resolve_data_dir(cfg), download=cfg.download)
        train_x, train_y, test_x, test_y, classes = read_cifar(spec, folder)
        name, source, max_train, max_test = cfg.dataset, str(folder), cfg.max_train_images, cfg.max_test_images
    else:
        raise DataError(f"unknown dataset {cfg.dataset!r}; choose cifar10, cifar100 or synthetic")
    num_classes = len(classes)
    if max_test:
        keep = _sorted(stratified_order(test_y, num_classes)[:max_test])
        test_x, test_y = test_x[keep], test_y[keep]
    order = stratified_order(train_y, num_classes)
    if max_train:
        order = order[:max_train]
    val_x = val_y = None
    if cfg.val_split:
        if cfg.val_split >= len(order):
            raise DataError(f"val_split ({cfg.val_split}) must be smaller than the {len(order)} training images")
        val = _sorted(order[: cfg.val_split])
        val_x, val_y = train_x[val], train_y[val]
        order = order[cfg.val_split:]
    if max_train or cfg.val_split:
        keep = _sorted(order)
        train_x, train_y = train_x[keep], train_y[keep]
    return DataSplits(train_x, train_y, test_x, test_y, val_x, val_y, classes, num_classes, name, source)


def check_data(cfg: Any) -> None:
    """Load ``cfg``'s data set once (downloading it if the config allows) so that a bad data folder is found before
    a run is created: the CLI's train and queue and the TUI's form call this. Raises DataError.

    Reading CIFAR-10 whole takes a fraction of a second. A folder this check created for a failed download is
    removed again: a rejected launch leaves nothing on disk.
    """
    if cfg.dataset == "synthetic":
        return
    root = resolve_data_dir(cfg).absolute()
    first_new = next((p for p in [root, *root.parents][::-1] if not p.exists()), None)
    try:
        load_data(cfg)
    except DataError:
        if first_new is not None and first_new.exists():
            shutil.rmtree(first_new, ignore_errors=True)
        raise


def stratified_order(y: torch.Tensor, num_classes: int, seed: int = SPLIT_SEED) -> torch.Tensor:
    """All indices, ordered so that every prefix is class-balanced (round robin over classes).

    Within a class the order is a fixed pseudo-random permutation, so a prefix does not depend on how the
    files happen to be sorted. Take ``order[:k]`` for a stratified subset of k.
    """
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=gen)
    yp = y[perm]
    # rank of each permuted sample among the samples of its class
    sort_idx = torch.sort(yp, stable=True).indices
    counts = torch.bincount(yp, minlength=num_classes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(yp)
    rank[sort_idx] = torch.arange(len(yp)) - starts[yp[sort_idx]]
    key = rank * num_classes + yp
    return perm[torch.sort(key, stable=True).indices]


def _sorted(idx: torch.Tensor) -> torch.Tensor:
    return torch.sort(idx).values


# -- CIFAR files ------------------------------------------------------------------------------------------


def find_cifar(spec: CifarSpec, root: Path, download: bool = True) -> Path:
    """The folder holding the python batches: root itself, root/<folder>, extracted from root/<archive>,
    or downloaded into root. Raises DataError saying where to put the data."""
    root = Path(root)
    found = locate(spec, root)
    if found is not None and found.is_dir():
        return found
    if found is not None:
        _extract(found, root, spec)
        return root / spec.folder
    message = missing_message(spec, root)
    if not download:
        raise DataError(message + " (Downloading is off for this run.)")
    created = [p for p in (root, *root.parents) if not p.exists()]   # the folders mkdir makes, deepest first
    try:
        from torchvision.datasets.utils import download_and_extract_archive

        root.mkdir(parents=True, exist_ok=True)
        download_and_extract_archive(spec.url, download_root=str(root), filename=spec.archive, md5=spec.md5)
    except Exception as exc:  # no network, bad checksum, full disk...
        _undo_download(root / spec.archive, created)
        raise DataError(f"{message} (Downloading it failed: {type(exc).__name__}: {exc})") from exc
    if not (root / spec.folder).is_dir():
        raise DataError(f"{message} (The downloaded archive did not contain {spec.folder}/.)")
    return root / spec.folder


def _undo_download(archive: Path, created: list[Path]) -> None:
    """After a failed download: no half archive (the next try would find and extract it) and no folder left that
    the download made and nothing else uses."""
    archive.unlink(missing_ok=True)
    for folder in created:
        try:
            folder.rmdir()          # only when empty
        except OSError:
            return


def _extract(archive: Path, root: Path, spec: CifarSpec) -> None:
    """Unpack into a temporary folder first, so an interrupted extraction never leaves a half folder."""
    try:
        with tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as tmp, tarfile.open(archive) as tar:
            for m in tar.getmembers():
                p = Path(m.name)
                if p.is_absolute() or ".." in p.parts or not (m.isfile() or m.isdir()):
                    raise DataError(f"{archive}: refusing unsafe archive member {m.name!r}")
            tar.extractall(tmp)
            if not (Path(tmp) / spec.folder).is_dir():
                raise DataError(f"{archive} does not contain the folder {spec.folder}/; "
                                f"it is not the {spec.title} python archive ({spec.url})")
            shutil.move(str(Path(tmp) / spec.folder), str(root / spec.folder))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(f"{archive} could not be extracted ({exc}); replace it with the archive from "
                        f"{spec.url}") from exc


def _unpickle(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{path} is missing: the {path.parent.name} folder is incomplete; extract the archive again")
    try:
        with open(path, "rb") as fh:
            raw = pickle.load(fh, encoding="latin1")
    except Exception as exc:
        raise DataError(f"{path} is corrupt: it cannot be read as a CIFAR python batch "
                        f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path} is corrupt: expected a dict, found {type(raw).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in raw.items()}


def _read_batches(spec: CifarSpec, folder: Path, files: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for name in files:
        path = folder / name
        d = _unpickle(path)
        data, labels = d.get("data"), d.get(spec.label_key)
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3072 or labels is None:
            shape = getattr(data, "shape", type(data).__name__)
            raise DataError(f"{path} is corrupt: expected 'data' of shape (N, 3072) and '{spec.label_key}', "
                            f"got {shape}")
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (data.shape[0],):
            raise DataError(f"{path} is corrupt: {data.shape[0]} images but {y.size} labels")
        if y.size and (y.min() < 0 or y.max() >= spec.num_classes):
            raise DataError(f"{path} is corrupt: labels outside 0..{spec.num_classes - 1}")
        if data.dtype != np.uint8:
            if data.size and (data.min() < 0 or data.max() > 255):
                raise DataError(f"{path} is corrupt: pixel values outside 0..255")
            data = data.astype(np.uint8)
        xs.append(data)
        ys.append(y)
    x = torch.from_numpy(np.concatenate(xs) if len(xs) > 1 else np.ascontiguousarray(xs[0]))
    return x.view(-1, 3, 32, 32), torch.from_numpy(np.concatenate(ys))


def read_cifar(spec: CifarSpec, folder: Path):
    """(train_x, train_y, test_x, test_y, classes) from an extracted python-batches folder."""
    meta = _unpickle(folder / spec.meta_file)
    names = meta.get(spec.names_key)
    if not isinstance(names, (list, tuple)) or len(names) != spec.num_classes:
        raise DataError(f"{folder / spec.meta_file} is corrupt: expected {spec.num_classes} '{spec.names_key}'")
    classes = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names]
    train_x, train_y = _read_batches(spec, folder, spec.train_files)
    test_x, test_y = _read_batches(spec, folder, spec.test_files)
    return train_x, train_y, test_x, test_y, classes


# -- synthetic ---------------------------------------------------------------------------------------------

_COLOURS = ["red", "orange", "yellow", "lime", "green", "teal", "cyan", "blue", "purple", "pink"]
_RGB = torch.tensor([[1.0, -0.6, -0.6], [1.0, 0.2, -0.8], [0.8, 0.8, -0.8], [0.2, 1.0, -0.6], [-0.6, 1.0, -0.4],
                     [-0.6, 0.6, 0.4], [-0.8, 0.8, 1.0], [-0.6, -0.4, 1.0], [0.4, -0.8, 0.8], [1.0, -0.2, 0.6]])
_ANGLES_DEG = [0, 18, 36, 54, 72, 90, 108, 126, 144, 162]


def synthetic_data(n_train: int = SYNTHETIC_SIZES[0], n_test: int = SYNTHETIC_SIZES[1]):
    """Ten learnable classes: class c = a colour tint plus stripes at angle 18c degrees, with random phase
    (a random shift), random contrast and pixel noise. Deterministic: same sizes, same images."""
    classes = [f"{c}-{a}deg" for c, a in zip(_COLOURS, _ANGLES_DEG)]
    train = _synthetic_split(n_train, SYNTHETIC_SEED)
    test = _synthetic_split(n_test, SYNTHETIC_SEED + 1)
    return (*train, *test, classes)


def _synthetic_split(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    y = y[torch.randperm(n, generator=gen)]
    theta = torch.tensor(_ANGLES_DEG, dtype=torch.float32).deg2rad()[y]
    freq = (2.0 + (y % 3).float()) * 2 * torch.pi / 32  # 2, 3 or 4 periods across the image
    phase = torch.rand(n, generator=gen) * 2 * torch.pi
    coords = torch.arange(32, dtype=torch.float32)
    yy, xx = coords.view(1, 32, 1), coords.view(1, 1, 32)
    proj = xx * theta.cos().view(n, 1, 1) + yy * theta.sin().view(n, 1, 1)
    stripes = torch.sin(proj * freq.view(n, 1, 1) + phase.view(n, 1, 1))  # (n, 32, 32)
    contrast = 35 + 30 * torch.rand(n, 1, 1, 1, generator=gen)
    tint = 30 * _RGB[y].view(n, 3, 1, 1)
    noise = 25 * torch.randn(n, 3, 32, 32, generator=gen)
    img = 128 + tint + contrast * stripes.unsqueeze(1) + noise
    return img.round().clamp_(0, 255).to(torch.uint8), y.to(torch.int64)
