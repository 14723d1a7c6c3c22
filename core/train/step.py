"""One optimisation step (``TrainStep``), the device window of per-iteration figures (``StepWindow``) and
evaluation over a whole split (``evaluate``).

Shared by the trainer and bench/throughput.py, so the benchmark measures the engine's real step. Nothing here
reads a value back from the device per iteration.
"""
from __future__ import annotations

import contextlib
import copy
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch.amp.grad_scaler import _refresh_per_optimizer_state

from core.data.loader import DeviceLoader
from core.train.device import AMP_DTYPES


class TrainStep:
    """Forward, backward and optimizer step for one batch, optionally split into micro-batches.

    ``micro_batches`` is the number of slices the global batch is cut into (``Tensor.tensor_split``), each
    normalised on its own by batch norm, their gradients accumulated: the same gradient as the whole batch
    (batch norm aside). This process trains ``chunks`` of them: all with one process; its share under DDP
    (``net`` is then the DistributedDataParallel module, which averages the gradients over ``world`` processes
    when the last chunk's backward runs). Set both through ``Setup.set_micro_batches``.

    Returns this process's share of the batch's mean loss (the loss sum of its images over the global batch size)
    and its count of wrong predictions, as device tensors (no sync): summed over processes, the batch's figures.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                 precision: str = "fp32", channels_last: bool = False, compiled: torch.nn.Module | None = None,
                 batch_size: int = 0, net: torch.nn.Module | None = None, world: int = 1, graphs: bool = False):
        self.model, self.optimizer, self.device = model, optimizer, device
        self.net = net if net is not None else model
        self.world = world
        self.precision = precision
        self.amp_dtype = AMP_DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.channels_last = channels_last
        self.compiled = compiled
        self.graphs = graphs        # compiled with CUDA graphs (torch.compile mode reduce-overhead)
        self.one_hot_loss = False   # a deterministic run on a GPU (Setup): the loss without NLLLoss's CUDA kernel
        self.batch_size = batch_size
        self.micro_batches = 1
        self.chunks = 1

    @contextlib.contextmanager
    def restoring(self) -> Iterator[None]:
        """Steps inside the block leave no trace: the weights and batch-norm statistics (copied back in place, so a
        compiled graph's references stay valid), the optimizer's and the gradient scaler's state and the RNGs are
        put back as they were. For compiling before the first real step (the trainer's warm-up), so a compiled run
        trains the same iterations as an eager one and resumes exactly."""
        weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        optimizer = copy.deepcopy(self.optimizer.state_dict())
        scaler = copy.deepcopy(self.scaler.state_dict())
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices, device_type="cuda"):
            try:
                yield
            finally:
                with torch.no_grad():
                    for k, v in self.model.state_dict().items():
                        v.copy_(weights[k])
                self.optimizer.load_state_dict(optimizer)
                if scaler:
                    self.scaler.load_state_dict(scaler)
                self.optimizer.zero_grad(set_to_none=True)

    def reset_after_failure(self) -> None:
        """Before a step is tried again (after an out-of-memory): no gradients, and the fp16 scaler's record of the
        failed step forgotten (a failure inside ``scaler.step``, e.g. the momentum buffers' first allocation, left
        the optimizer marked unscaled, and the retry raised "unscale_() has already been called")."""
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler.is_enabled():
            self.scaler._per_optimizer_states = defaultdict(_refresh_per_optimizer_state)

    def net_for(self, total: int, pieces: int) -> torch.nn.Module:
        """The module a step runs: the compiled one for full batches only (the last partial batch never triggers a
        recompile), and with CUDA graphs (``graphs``) only for a whole batch in one piece. A graph replay frees the
        outputs of the replay before it, and with micro-batches the first slice's gradients (``set_to_none`` makes
        autograd hand the graph's own output tensor to ``.grad``) would live in that pool while the next slice's replay
        reuses it: the accumulation would read freed memory. Slices (``--micro-batches``, the split after an
        out-of-memory) therefore run eager under reduce-overhead."""
        if self.compiled is None or total != self.batch_size or (self.graphs and pieces > 1):
            return self.net
        return self.compiled

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.amp_dtype is not None)

    def __call__(self, x: torch.Tensor, y: torch.Tensor, lr: float,
                 total: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        n = x.shape[0]
        total = total or n        # images in the global batch; x holds this process's share
        self.optimizer.zero_grad(set_to_none=True)
        if self.world == 1:
            pieces = [p for p in zip(x.tensor_split(self.chunks), y.tensor_split(self.chunks)) if len(p[1])]
        else:       # every process runs the same number of backward passes, even on empty pieces
            pieces = list(zip(x.tensor_split(self.chunks), y.tensor_split(self.chunks)))
        net = self.net_for(total, len(pieces))
        accumulate = getattr(self.net, "no_sync", None)     # DDP: all-reduce the gradients once, after the last piece
        losses, wrongs = [], []
        for i, (xs, ys) in enumerate(pieces):
            last = i == len(pieces) - 1
            with accumulate() if accumulate is not None and not last else contextlib.nullcontext():
                with self.autocast():
                    out = net(xs)
                    loss = cross_entropy(out.float(), ys, self.one_hot_loss) if len(ys) else out.float().sum()
                if self.world == 1:
                    scaled = loss * (xs.shape[0] / n) if len(pieces) > 1 else loss
                else:   # DDP divides the summed gradients by the world size
                    scaled = loss * (xs.shape[0] * self.world / total)
                self.scaler.scale(scaled).backward()
            losses.append(loss.detach() * xs.shape[0])
            wrongs.append((out.detach().argmax(1) != ys).sum())
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if len(pieces) == 1:
            return losses[0] / total, wrongs[0]
        return torch.stack(losses).sum() / total, torch.stack(wrongs).sum()


def cross_entropy(logits: torch.Tensor, y: torch.Tensor, one_hot: bool = False) -> torch.Tensor:
    """The batch's mean cross-entropy. ``one_hot``: the same value through log-softmax and a one-hot product, whose
    backward is elementwise: a deterministic run on a GPU, where NLLLoss's CUDA kernel has no deterministic version
    (torch only warns there, since the trainer asks for warn_only)."""
    if not one_hot:
        return F.cross_entropy(logits, y)
    return -(F.one_hot(y, logits.shape[1]).to(logits.dtype) * F.log_softmax(logits, 1)).sum(1).mean()


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: DeviceLoader, step: TrainStep | None = None,
             reduce: Callable[[torch.Tensor], Any] | None = None) -> tuple[float, float]:
    """Mean cross-entropy and error (%) over a whole split, in large batches, without autograd.

    With a sharded loader each process evaluates its part; ``reduce`` sums (loss, wrong) over the processes."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=loader.device, dtype=torch.float64)
    wrong = torch.zeros((), device=loader.device, dtype=torch.int64)
    try:
        for x, y in loader:
            if not len(y):
                continue
            with (step.autocast() if step else torch.autocast(loader.device.type, enabled=False)):
                out = model(x)
            loss_sum += F.cross_entropy(out.float(), y, reduction="sum").double()
            wrong += (out.argmax(1) != y).sum()
    finally:
        model.train(was_training)
    n = loader.num_samples
    if reduce is not None:
        both = reduce(torch.stack([loss_sum, wrong.double()]))
        return float(both[0]) / n, 100.0 * int(both[1]) / n
    return float(loss_sum) / n, 100.0 * int(wrong) / n


class StepRow(NamedTuple):
    """One iteration as read back from the device."""

    step: int        # 0-based iteration of the run
    epoch: int       # 1-based epoch it belongs to
    images: int      # batch size
    lr: float
    loss: float      # the batch's mean loss
    wrong: float     # the batch's wrong predictions


class StepWindow:
    """Per-iteration loss and wrong counts, kept on the device and read back one window late.

    Two device buffers alternate; sealing one starts an async copy to the host, and the previous copy is read then,
    so the host never waits for the GPU inside an epoch.
    """

    def __init__(self, size: int, device: torch.device, reduce: Callable[[torch.Tensor], Any] | None = None):
        self.size, self.device = size, device
        self.reduce = reduce        # under DDP: sums each sealed window over the processes (on the device)
        self.bufs = [torch.zeros(size, 2, device=device) for _ in range(2)]
        pin = device.type == "cuda"
        self.host = [torch.zeros(size, 2, pin_memory=pin) for _ in range(2)]
        self.cur = 0
        self.meta: list[tuple[int, int, int, float]] = []   # (step, epoch, batch size, lr) per filled slot
        self.pending: list[tuple[int, list, Any]] = []      # (buffer index, meta, cuda event)

    def put(self, loss: torch.Tensor, wrong: torch.Tensor, step: int, epoch: int, bs: int, lr: float) -> None:
        j = len(self.meta)
        buf = self.bufs[self.cur]
        buf[j, 0] = loss.detach().float()
        buf[j, 1] = wrong.float()
        self.meta.append((step, epoch, bs, lr))

    @property
    def full(self) -> bool:
        return len(self.meta) >= self.size

    def seal(self) -> None:
        if not self.meta:
            return
        i = self.cur
        if self.reduce is not None:
            self.reduce(self.bufs[i][: len(self.meta)])
        self.host[i][: len(self.meta)].copy_(self.bufs[i][: len(self.meta)], non_blocking=True)
        event = None
        if self.device.type == "cuda":   # on the stream the copy runs on: the run's device's, not cuda:0's
            event = torch.cuda.Event()
            event.record(torch.cuda.current_stream(self.device))
        self.pending.append((i, self.meta, event))
        self.meta = []
        self.cur = 1 - i

    def drain(self, keep: int = 0) -> list[StepRow]:
        """Read sealed windows (all but the newest ``keep``)."""
        rows = []
        while len(self.pending) > keep:
            i, meta, event = self.pending.pop(0)
            if event is not None:
                event.synchronize()
            vals = self.host[i][: len(meta)].tolist()
            rows.extend(StepRow(*m, v[0], v[1]) for m, v in zip(meta, vals))
        return rows
