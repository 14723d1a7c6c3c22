"""Upper bounds of the settings, applied by ``RunConfig.validate``: a config that passes must be able to start, so
absurd sizes are refused up front (exit 2, nothing created) with the memory they would need, instead of failing
after the run folder exists. Absurd lengths (epochs, iterations) stay allowed: the trainer logs the estimated
duration as soon as it knows its speed.
"""
from __future__ import annotations

from typing import Any

from core.util.formatting import model_name, number_text

MAX_SEED = 2 ** 64 - 1            # torch.manual_seed takes 0 .. 2**64 - 1
MAX_IMAGES = 1_000_000            # CIFAR has 50,000 training and 10,000 test images; a synthetic image is 3 KiB
MAX_LOG_EVERY = 100_000
MAX_LENGTH = 10 ** 12             # epochs or iterations
MAX_TRAIN_BYTES = 2 ** 40         # 1 TiB: more than any one device holds (an H200 has 141 GB)


def parameters(depth: int, width: int, classes: int = 100, arch: str = "resnet", widths: tuple[int, ...] = (),
               stem: int = 0) -> int:
    """About how many parameters a CIFAR ResNet has: stages of c1, c2, c3 filters (w, 2w, 4w unless ``widths``
    says otherwise) after a stem of ``stem`` (0: c1), n = (depth-2)/6 blocks of two 3x3 convolutions each (He et al.
    2016, sec. 4.2; pre-activation and wide nets alike): ResNet-20 at width 16 ~0.27M, 30/60/90 after a 64-filter
    stem ~0.66M (BN, projections and the classifier's bias left out). A pre-activation bottleneck net (9n+2) has n
    blocks of 1x1 (4m -> m), 3x3 (m -> m), 1x1 (m -> 4m) per stage, m = w, 2w, 4w: ~17 m^2 each, and 1x1 projections
    where the shape changes (PreAct-164: ~1.7M)."""
    if arch == "preact-bottleneck":
        n = (depth - 2) // 9
        return (357 * n + 164) * width * width + 27 * width + 16 * width * classes    # 164 w^2: the projections
    n = (depth - 2) // 6
    c = tuple(widths) if len(widths) == 3 else (width, 2 * width, 4 * width)
    stem = stem or c[0]
    convs = sum(9 * c_in * c_out + 9 * c_out * c_out + 18 * (n - 1) * c_out * c_out
                for c_in, c_out in zip((stem, c[0], c[1]), c))
    return convs + 27 * stem + c[2] * classes


def _net(cfg: Any) -> dict[str, Any]:
    """A config's stage widths and stem as ``parameters`` and ``activation_bytes`` take them."""
    return {"arch": cfg.arch, "widths": tuple(getattr(cfg, "widths", ()) or ()),
            "stem": 0 if cfg.arch == "wrn" else getattr(cfg, "stem_width", 0)}


def train_bytes(depth: int, width: int, arch: str = "resnet", widths: tuple[int, ...] = (), stem: int = 0) -> int:
    """fp32 weights, gradients and two optimizer moments (Adam's; SGD's momentum needs one)."""
    return 16 * parameters(depth, width, arch=arch, widths=widths, stem=stem)


def activation_bytes(depth: int, width: int, arch: str = "resnet", widths: tuple[int, ...] = (), stem: int = 0
                     ) -> int:
    """About the fp32 activations one image keeps for the backward pass (convolution, batch-norm and ReLU outputs
    of every layer: 32x32 maps of w channels, 16x16 of 2w, 8x8 of 4w). A bottleneck block keeps ~2.5 times a basic
    block's (its 4w-channel input and output besides three w-channel layers). Measured with saved-tensor hooks on
    the CPU this errs on the safe side: ResNet-110 8.5 MB per image (estimate 12.6 MB), WRN-28-10 18.6 MB
    (29.5 MB), a bottleneck PreAct-29 at width 16 4.3 MB (5.4 MB)."""
    if arch == "preact-bottleneck":
        return 12 * width * (8960 * ((depth - 2) // 9) + 1024)
    n = (depth - 2) // 6
    c1, c2, c3 = tuple(widths) if len(widths) == 3 else (width, 2 * width, 4 * width)
    return 12 * (1024 * (stem or c1) + 2 * n * (1024 * c1 + 256 * c2 + 64 * c3))


def memory_estimate(cfg: Any) -> tuple[int, int]:
    """(bytes, images) a run's training step needs at most, about: fp32 weights, gradients and optimizer state
    (``train_bytes``) and the activations (``activation_bytes``) of one micro-batch of ``images`` (the batch cut
    into ``micro_batches`` slices). ResNet-110 at batch 128 ~1.5 GiB; WRN-28-10 ~4.1 GiB; PreAct-1001 ~23 GiB: the
    out-of-memory that the automatic split (on_oom split: twice the micro-batches, the same step) answers."""
    images = -(-cfg.batch_size // max(1, cfg.micro_batches))
    net = _net(cfg)
    return train_bytes(cfg.depth, cfg.width, **net) + activation_bytes(cfg.depth, cfg.width, **net) * images, images


def approx(n: float) -> str:
    """A size for a message: '1.04e+15', '0.25', '10^603'."""
    return f"{n:.3g}" if n < 1e300 else f"10^{len(str(int(n))) - 1}"


def tib(nbytes: int) -> str:
    return f"{approx(nbytes / 2 ** 40 if nbytes < 10 ** 300 else nbytes // 2 ** 40)} TiB"


def check(cfg: Any, e: dict[str, str]) -> None:
    """Add to ``e`` (field -> message) what exceeds a bound; fields that already have an error are left alone."""
    def refuse(name: str, message: str) -> None:
        e.setdefault(name, message)

    if cfg.seed > MAX_SEED:
        refuse("seed", f"seed must be at most 2**64-1 (the largest torch accepts), got {number_text(cfg.seed)}")
    for name in ("val_split", "max_train_images", "max_test_images"):
        if getattr(cfg, name) > MAX_IMAGES:
            refuse(name, f"{name} must be at most {MAX_IMAGES:,} (CIFAR-10 has 50,000 training and 10,000 test "
                         f"images), got {number_text(getattr(cfg, name))}")
    if cfg.batch_size > MAX_IMAGES:
        refuse("batch_size", f"batch size must be at most {MAX_IMAGES:,} (CIFAR-10 has 50,000 training images), "
                             f"got {number_text(cfg.batch_size)}")
    if cfg.log_every > MAX_LOG_EVERY:
        refuse("log_every", f"log_every must be at most {MAX_LOG_EVERY:,} iterations, got "
                            f"{number_text(cfg.log_every)}")
    for name in ("epochs", "iterations", "warmup_iters"):
        if getattr(cfg, name) > MAX_LENGTH:
            refuse(name, f"{name} must be at most 10**12, got {number_text(getattr(cfg, name))}")
    if "depth" in e or "width" in e or "widths" in e or "stem_width" in e or cfg.width < 1:
        return
    depth = number_text(cfg.depth)          # 10^603 for an absurd one
    net = f"WRN-{depth}" if cfg.arch == "wrn" else model_name(depth, cfg.shortcut, cfg.arch)
    model = f"{net} at width {number_text(cfg.width)}"
    net = _net(cfg)
    weights = train_bytes(cfg.depth, cfg.width, **net)
    if weights > MAX_TRAIN_BYTES:
        name = "width" if cfg.width > 64 or cfg.depth <= 1202 else "depth"
        count = approx(parameters(cfg.depth, cfg.width, **net))
        refuse(name, f"{model} has about {count} parameters: about "
                     f"{tib(weights)} to train (weights, gradients, optimizer state), more than any device holds "
                     f"({tib(MAX_TRAIN_BYTES)}); use a smaller {name}")
        return
    per_image = activation_bytes(cfg.depth, cfg.width, **net)
    if "batch_size" not in e and weights + per_image * cfg.batch_size > MAX_TRAIN_BYTES:
        most = (MAX_TRAIN_BYTES - weights) // per_image
        refuse("batch_size", f"batch size {number_text(cfg.batch_size)} needs about "
                             f"{tib(per_image * cfg.batch_size)} of activations for {model}, more than any device "
                             f"holds ({tib(MAX_TRAIN_BYTES)}); at most about {most:,}")


def fit_error(cfg: Any, total_bytes: int | None, device: str, splits: bool) -> str:
    """Why ``cfg`` cannot train on a device of ``total_bytes`` memory ('' when it fits or the memory is unknown): its
    estimate (``memory_estimate``) with the fewest images per micro-batch it can reach (one, where ``splits``: the
    out-of-memory split on a GPU halves the micro-batch until it fits) exceeds it. A run refused here would grow until
    the kernel's out-of-memory killer ended it (or a process of someone else on a shared machine)."""
    if not total_bytes:
        return ""
    need, images = memory_estimate(cfg)
    if splits:
        need, images = train_bytes(cfg.depth, cfg.width, cfg.arch) + activation_bytes(cfg.depth, cfg.width,
                                                                                       cfg.arch), 1
    if need <= total_bytes:
        return ""
    net = f"WRN-{cfg.depth}" if cfg.arch == "wrn" else model_name(cfg.depth, cfg.shortcut, cfg.arch)
    return (f"{net} at width {cfg.width} needs about {need / 2 ** 30:,.1f} GiB to train "
            f"{images} image{'s' if images != 1 else ''} at a time (weights, gradients, optimizer state and "
            f"activations), more than the {total_bytes / 2 ** 30:,.1f} GiB of {device}; use a smaller depth, width "
            f"or batch (or more --micro-batches), or --ignore-memory to try anyway")
