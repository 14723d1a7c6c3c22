"""What a run trained on, recorded when it starts (status.json "data"): the data set, how many training, test and
held-out images it used, and a fingerprint of those images and labels.

Seed groups, tables and figures (core/results/groups.py) never pool runs whose identities differ: a run on a
1,000-image subset and one on 5,000 images are different experiments even when their settings match, and two
copies of the same files in different folders are the same data. The fingerprint hashes the very tensors the
trainer uses (after the subset and the split), about 0.2 s for all of CIFAR-10.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np


def fingerprint(*arrays: Any) -> str:
    """16 hex digits of BLAKE2b over the arrays' shapes and bytes (tensors are read on the CPU); None skipped."""
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        if a is None:
            continue
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def data_identity(data: Any) -> dict:
    """The identity of loaded data (core.data.cifar.DataSplits): dataset, train/test/held-out image counts,
    fingerprint."""
    val = 0 if data.val_x is None else len(data.val_x)
    return {"dataset": data.name, "train_images": len(data.train_x), "test_images": len(data.test_x),
            "val_images": val, "fingerprint": fingerprint(data.train_x, data.train_y, data.test_x, data.test_y,
                                                          data.val_x, data.val_y)}
