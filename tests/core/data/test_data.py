"""Data sets: the direct CIFAR reader on real images, stratified splits, helpful errors, synthetic data.

No test touches the network: the download path is exercised with download=False or a failing stand-in.
"""
from __future__ import annotations

import math
import pickle
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.cifar import load_data, stratified_order, synthetic_data
from core.data.datasets import CIFAR, DataError, resolve_data_dir
from core.spec.config import RunConfig

SHARED = Path(__file__).resolve().parents[3].parent / "shared"
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
TRAIN_PER_CLASS, TEST_PER_CLASS = 20, 5


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory) -> Path:
    """A small real CIFAR-10 subset in the official layout: <root>/cifar-10-batches-py (200 train, 50 test)."""
    root = tmp_path_factory.mktemp("cifar-small")
    subprocess.run([sys.executable, str(SHARED / "tools" / "cifar10_jpeg.py"), str(root),
                    "--train-per-class", str(TRAIN_PER_CLASS), "--test-per-class", str(TEST_PER_CLASS)],
                   check=True, capture_output=True)
    return root


def _cfg(root, **kw) -> RunConfig:
    return RunConfig(dataset=kw.pop("dataset", "cifar10"), data_dir=str(root), download=False, **kw)


def _copy(cifar_root: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "data"
    shutil.copytree(cifar_root, dest)
    return dest


# -- the real reader ---------------------------------------------------------------------------------------


def test_reads_real_subset(cifar_root):
    d = load_data(_cfg(cifar_root))
    assert d.train_x.shape == (200, 3, 32, 32) and d.train_x.dtype == torch.uint8
    assert d.test_x.shape == (50, 3, 32, 32) and d.test_x.dtype == torch.uint8
    assert d.train_y.dtype == torch.int64 and d.test_y.dtype == torch.int64
    assert d.train_y.bincount().tolist() == [TRAIN_PER_CLASS] * 10
    assert d.test_y.bincount().tolist() == [TEST_PER_CLASS] * 10
    assert d.classes == CIFAR10_CLASSES and d.num_classes == 10
    assert d.val_x is None and d.val_y is None
    assert d.name == "cifar10"
    assert Path(d.source) == cifar_root / "cifar-10-batches-py"
    assert d.train_x.device.type == "cpu"
    # Real photographs, not blank: a spread of pixel values in every channel.
    assert d.train_x.float().std(dim=(0, 2, 3)).min() > 30


def test_pixels_follow_the_official_row_layout(cifar_root):
    # Each row is 1024 red, then 1024 green, then 1024 blue values, row-major.
    with open(cifar_root / "cifar-10-batches-py" / "data_batch_1", "rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    d = load_data(_cfg(cifar_root))
    first = torch.from_numpy(raw["data"][0]).view(3, 32, 32)
    assert torch.equal(d.train_x[0], first)
    assert d.train_y[0].item() == raw["labels"][0]
    assert torch.equal(d.train_x[0, 1, 2], torch.from_numpy(raw["data"][0][1024 + 2 * 32: 1024 + 3 * 32]))


def test_data_dir_may_be_the_batches_folder_itself(cifar_root):
    d = load_data(_cfg(cifar_root / "cifar-10-batches-py"))
    assert len(d.train_y) == 200


def test_resolve_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("RESLAB_DATA", raising=False)
    assert resolve_data_dir(RunConfig()) == Path("data")
    monkeypatch.setenv("RESLAB_DATA", str(tmp_path))
    assert resolve_data_dir(RunConfig()) == tmp_path
    assert resolve_data_dir(RunConfig(data_dir="elsewhere")) == Path("elsewhere")


def test_env_var_points_to_data(monkeypatch, cifar_root):
    monkeypatch.setenv("RESLAB_DATA", str(cifar_root))
    d = load_data(RunConfig(download=False, max_test_images=10))
    assert len(d.test_y) == 10


# -- splits --------------------------------------------------------------------------------------------------


def test_stratified_subsets(cifar_root):
    d = load_data(_cfg(cifar_root, max_train_images=100, max_test_images=20))
    assert d.train_y.bincount().tolist() == [10] * 10
    assert d.test_y.bincount().tolist() == [2] * 10
    full = load_data(_cfg(cifar_root))
    # A subset is made of images of the full set (their labels agree), in file order.
    rows = {bytes(x.numpy()): int(y) for x, y in zip(full.train_x, full.train_y)}
    assert all(rows[bytes(x.numpy())] == int(y) for x, y in zip(d.train_x, d.train_y))


def test_val_split_is_stratified_disjoint_and_seed_independent(cifar_root):
    d = load_data(_cfg(cifar_root, val_split=50))
    assert len(d.train_y) == 150 and len(d.val_y) == 50
    assert d.val_y.bincount().tolist() == [5] * 10
    assert d.train_y.bincount().tolist() == [15] * 10
    full = load_data(_cfg(cifar_root))
    key = lambda xs: sorted(bytes(x.numpy()) for x in xs)
    assert key(torch.cat([d.train_x, d.val_x])) == key(full.train_x)  # a partition of the training set
    other = load_data(_cfg(cifar_root, val_split=50, seed=7))  # all runs share the same split
    assert torch.equal(other.val_x, d.val_x) and torch.equal(other.train_x, d.train_x)
    assert torch.equal(d.test_x, full.test_x)  # the test split is untouched


def test_val_split_within_a_subset(cifar_root):
    d = load_data(_cfg(cifar_root, max_train_images=100, val_split=20))
    assert len(d.train_y) == 80 and len(d.val_y) == 20
    assert d.val_y.bincount().tolist() == [2] * 10
    assert d.train_y.bincount().tolist() == [8] * 10


def test_stratified_order_prefixes_are_balanced_even_when_classes_are_not():
    y = torch.tensor([0] * 50 + [1] * 30 + [2] * 5)
    order = stratified_order(y, 3)
    assert sorted(order.tolist()) == list(range(85))
    assert y[order[:12]].bincount(minlength=3).tolist() == [4, 4, 4]
    assert y[order[:30]].bincount(minlength=3).tolist() == [13, 12, 5]  # class 2 runs out, the others fill in
    assert torch.equal(order, stratified_order(y, 3))


# -- errors -------------------------------------------------------------------------------------------------


def test_missing_data_without_download_says_where_to_put_it(tmp_path):
    with pytest.raises(DataError) as info:
        load_data(_cfg(tmp_path / "nowhere"))
    msg = str(info.value)
    where = str((tmp_path / "nowhere").resolve())
    for part in (where, "cifar-10-python.tar.gz", "cifar-10-batches-py", "--data-dir", "RESLAB_DATA",
                 CIFAR["cifar10"].url):
        assert part in msg


def test_failed_download_gives_the_same_advice(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", offline)
    with pytest.raises(DataError) as info:
        load_data(RunConfig(dataset="cifar100", data_dir=str(tmp_path), download=True))
    msg = str(info.value)
    assert "Network is unreachable" in msg and "cifar-100-python.tar.gz" in msg and CIFAR["cifar100"].url in msg


def test_corrupt_batch_file_is_named(cifar_root, tmp_path):
    root = _copy(cifar_root, tmp_path)
    bad = root / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(b"this is not a pickle")
    with pytest.raises(DataError, match="data_batch_3"):
        load_data(_cfg(root))


@pytest.mark.parametrize("damage", ["shape", "labels", "count"])
def test_malformed_batch_is_named(cifar_root, tmp_path, damage):
    root = _copy(cifar_root, tmp_path)
    path = root / "cifar-10-batches-py" / "test_batch"
    with open(path, "rb") as fh:
        d = pickle.load(fh)
    if damage == "shape":
        d["data"] = d["data"][:, :1000]
    elif damage == "labels":
        d["labels"][3] = 10
    else:
        d["labels"] = d["labels"][:-1]
    with open(path, "wb") as fh:
        pickle.dump(d, fh)
    with pytest.raises(DataError, match="test_batch"):
        load_data(_cfg(root))


def test_missing_batch_file_is_named(cifar_root, tmp_path):
    root = _copy(cifar_root, tmp_path)
    (root / "cifar-10-batches-py" / "data_batch_5").unlink()
    with pytest.raises(DataError, match="data_batch_5"):
        load_data(_cfg(root))


# -- archive and CIFAR-100 ------------------------------------------------------------------------------------


def test_archive_only_is_extracted(cifar_root, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(cifar_root / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    d = load_data(_cfg(root))
    assert len(d.train_y) == 200 and d.classes == CIFAR10_CLASSES
    assert (root / "cifar-10-batches-py" / "data_batch_1").is_file()
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py", "cifar-10-python.tar.gz"]
    assert torch.equal(d.train_x, load_data(_cfg(cifar_root)).train_x)


def test_unsafe_archive_is_refused(tmp_path):
    outside = tmp_path / "evil.txt"
    outside.write_text("x")
    root = tmp_path / "data"
    root.mkdir()
    with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(outside, arcname="../evil.txt")
    with pytest.raises(DataError, match="unsafe"):
        load_data(_cfg(root))


def _write_py2_style_cifar100(root: Path, n_train: int, n_test: int) -> None:
    """A tiny CIFAR-100 folder with bytes keys, as the official python-2 pickles load with encoding='bytes'."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in (("train", n_train), ("test", n_test)):
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"fine_labels": [i % 100 for i in range(n)], b"coarse_labels": [i % 20 for i in range(n)]}
        with open(folder / name, "wb") as fh:
            pickle.dump(d, fh)
    with open(folder / "meta", "wb") as fh:
        pickle.dump({b"fine_label_names": [f"class{i}".encode() for i in range(100)]}, fh)


def test_cifar100_with_bytes_keys(tmp_path):
    _write_py2_style_cifar100(tmp_path, 300, 200)
    d = load_data(_cfg(tmp_path, dataset="cifar100", val_split=100))
    assert d.num_classes == 100 and d.classes[7] == "class7"
    assert len(d.train_y) == 200 and len(d.val_y) == 100 and len(d.test_y) == 200
    assert d.val_y.bincount(minlength=100).tolist() == [1] * 100
    assert int(d.train_y.max()) == 99


# -- synthetic ----------------------------------------------------------------------------------------------


def test_synthetic_defaults_and_determinism():
    d = load_data(RunConfig(dataset="synthetic"))
    assert d.train_x.shape == (2000, 3, 32, 32) and d.train_x.dtype == torch.uint8
    assert d.test_x.shape == (500, 3, 32, 32) and d.test_y.dtype == torch.int64
    assert d.num_classes == 10 and len(d.classes) == 10 and len(set(d.classes)) == 10
    assert d.train_y.bincount().tolist() == [200] * 10
    assert d.source == "synthetic" and d.name == "synthetic"
    again = load_data(RunConfig(dataset="synthetic", seed=3))
    assert torch.equal(again.train_x, d.train_x) and torch.equal(again.test_y, d.test_y)
    assert not torch.equal(d.train_x[:500], d.test_x)  # test images are not copies of training images


def test_synthetic_sizes_and_val_split():
    d = load_data(RunConfig(dataset="synthetic", max_train_images=300, max_test_images=50, val_split=100))
    assert len(d.train_y) == 200 and len(d.val_y) == 100 and len(d.test_y) == 50
    assert d.val_y.bincount().tolist() == [10] * 10


def test_synthetic_classes_are_separable():
    # A nearest-class-mean classifier on raw pixels is far above chance (10%) on the held-out images.
    train_x, train_y, test_x, test_y, _ = synthetic_data(1000, 500)
    feats = lambda x: x.float().flatten(1)
    means = torch.stack([feats(train_x[train_y == c]).mean(0) for c in range(10)])
    pred = torch.cdist(feats(test_x), means).argmin(1)
    assert (pred == test_y).float().mean() > 0.5


def test_a_failed_download_leaves_no_folder_or_partial_archive_behind(tmp_path, monkeypatch):
    # `eval --data-dir /tmp/x` without network left an empty /tmp/x (and would leave a half-written archive)
    import torchvision.datasets.utils as tv_utils

    def half_then_offline(url, download_root, filename, md5):
        (Path(download_root) / filename).write_bytes(b"partial")
        raise OSError("Network is unreachable")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", half_then_offline)
    kept = tmp_path / "kept"
    kept.mkdir()
    for root in (tmp_path / "new" / "deeper", kept):
        with pytest.raises(DataError, match="Network is unreachable"):
            load_data(RunConfig(dataset="cifar10", data_dir=str(root), download=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"] and list(kept.iterdir()) == []


def test_a_runs_length_is_planned_from_the_images_its_data_folder_holds(cifar_root, cifar_small, tmp_path):
    # the form said 'about 64,000 iterations (391 per epoch)' for every CIFAR folder, a 1,000-image subset too
    from core.data.plan import planned_steps

    for root, images in ((cifar_root, 200), (cifar_small, 2000)):
        cfg = _cfg(root, batch_size=64, epochs=3, iterations=0)
        assert planned_steps(cfg) == (math.ceil(images / 64), 3 * math.ceil(images / 64)), root
        assert planned_steps(cfg.with_overrides(val_split=50))[0] == math.ceil((images - 50) / 64)
    missing = _cfg(tmp_path / "nothing-here", batch_size=128, epochs=1, iterations=0)
    assert planned_steps(missing) == (391, 391)         # not there yet (downloaded at the start): the official set
