"""What the data sets are and where they live: names, files, the data folder, and whether a data set is there.

No torch here (core/data/cifar.py reads the data): the new-run form asks ``find_data`` at every edit of a data field,
a few file checks, without importing torch.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class DataError(RuntimeError):
    """A data set that is missing, unreadable or malformed; the message names the cause and the fix."""


@dataclass(frozen=True)
class CifarSpec:
    title: str
    folder: str
    archive: str
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int


CIFAR = {
    "cifar10": CifarSpec("CIFAR-10", "cifar-10-batches-py", "cifar-10-python.tar.gz",
                      "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
                      tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
                      "labels", "label_names", 10),
    "cifar100": CifarSpec("CIFAR-100", "cifar-100-python", "cifar-100-python.tar.gz",
                       "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
                       ("train",), ("test",), "meta", "fine_labels", "fine_label_names", 100),
}


def resolve_data_dir(cfg: Any) -> Path:
    """cfg.data_dir, else $RESLAB_DATA, else data/ (relative to the working directory)."""
    raw = getattr(cfg, "data_dir", "") or os.environ.get("RESLAB_DATA", "") or "data"
    return Path(raw).expanduser()


def missing_message(spec: CifarSpec, root: Path) -> str:
    where = root.resolve()
    return (
        f"{spec.title} was not found in {where}. Put the archive {spec.archive} (download it from {spec.url}) "
        f"in {where}, or extract it there so that {where / spec.folder / spec.train_files[0]} exists. "
        f"To use another folder set data_dir (the form's field, or --data-dir DIR) or $RESLAB_DATA."
    )


def find_data(cfg: Any) -> str | None:
    """Where ``cfg``'s data set is, without reading or downloading it: the folder, None for synthetic data, or
    DataError when it is not there (the message says where to put it). Quick enough for a form's every edit."""
    if cfg.dataset == "synthetic":
        return None
    if cfg.dataset not in CIFAR:
        raise DataError(f"unknown dataset {cfg.dataset!r}; choose cifar10, cifar100 or synthetic")
    spec, root = CIFAR[cfg.dataset], resolve_data_dir(cfg)
    found = locate(spec, root)
    if found is None:
        raise DataError(missing_message(spec, root))
    return str(found)


BATCH_BYTES_PER_IMAGE = 3100   # a python batch file: 3,072 pixel bytes per image, plus its labels and file name
_COUNTS: dict[tuple[str, int, int], int] = {}   # (batch file, mtime_ns, size) -> its images, read once
_INT_OPS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"}
_LIST_OPS = {"EMPTY_LIST", "MARK", "APPEND", "APPENDS", "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "FRAME"}


def train_images_in_folder(cfg: Any, official: int) -> int | None:
    """How many training images ``cfg``'s data folder holds (a subset such as ../shared/tools/cifar10_jpeg.py writes
    holds fewer), at most ``official``; None when unknown: synthetic data, only the archive, no folder yet. Counted
    from each batch file's labels (``batch_images``), not guessed from its size: 5,000 images read as 4,987 made
    the form say 39 iterations per epoch at batch 128 where the run does 40."""
    spec = CIFAR.get(cfg.dataset)
    found = locate(spec, resolve_data_dir(cfg)) if spec else None
    if found is None or not found.is_dir():
        return None
    try:
        counts = [batch_images(found / name, spec.label_key) for name in spec.train_files]
    except OSError:
        return None
    return min(official, sum(counts))


def batch_images(path: Path, label_key: str) -> int:
    """The images in a CIFAR python batch file: the length of its labels list, read from the head of the pickle
    (the labels come before the pixels in the official files and in cifar10_jpeg.py's, so the pixels are not read:
    milliseconds, where unpickling takes up to half a second a file), once per file version (mtime and size).
    A file that reads otherwise is estimated from its size. Raises OSError when the file cannot be read."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _COUNTS:
        _COUNTS[key] = _labels_in_pickle(path, label_key) or round(stat.st_size / BATCH_BYTES_PER_IMAGE)
    return _COUNTS[key]


def _labels_in_pickle(path: Path, label_key: str) -> int | None:
    """The number of integers in the list stored under ``label_key`` (str or bytes, any protocol), walking the
    pickle's opcodes up to the end of that list; None when the file is not laid out so (labels in an array, the key
    missing, a damaged file)."""
    import pickletools

    keys = (label_key, label_key.encode())
    try:
        with open(path, "rb") as fh:
            ops = pickletools.genops(fh)
            for _, arg, _ in ops:
                if isinstance(arg, (str, bytes)) and arg in keys:
                    break
            else:
                return None
            n = 0
            for op, _, _ in ops:
                if op.name in _INT_OPS:
                    n += 1
                elif op.name not in _LIST_OPS:
                    break               # the next key (or the end): the list is done
            return n or None
    except (ValueError, EOFError):
        return None


def locate(spec: CifarSpec, root: Path) -> Path | None:
    """The folder of python batches (``root`` itself or ``root/<folder>``), else the official archive in ``root``,
    else None."""
    for candidate in (root, root / spec.folder):
        if candidate.name == spec.folder and candidate.is_dir():
            return candidate
    archive = root / spec.archive
    return archive if archive.is_file() else None
