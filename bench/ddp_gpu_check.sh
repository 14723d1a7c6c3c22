#!/usr/bin/env bash
# The GPU checks of issue 13 (DDP) that the CPU tests cannot make; ~1-2 minutes, synthetic data, nothing to carry:
#   run(command="bash bench/ddp_gpu_check.sh", timeout_s=300)
# 1. one process through torchrun with NCCL and --sync-bn (SyncBatchNorm converted, DDP wrapper, NCCL collectives);
# 2. with 2+ GPUs: 2 processes (NCCL) vs one process with --micro-batches 2 (max parameter difference printed),
#    and a 2-process --sync-bn run.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
RUNS="$OUT/ddp-runs"
rm -rf "$RUNS"
DEVICE=${DEVICE:-cuda}       # DEVICE=cpu SYNC= GPUS=2 bash bench/ddp_gpu_check.sh: the same script on the CPU (gloo)
SYNC=${SYNC---sync-bn}
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
TORCHRUN="python -m torch.distributed.run --standalone"
COMMON="--dataset synthetic --max-train-images 2048 --max-test-images 512 --depth 20 --batch-size 128 --iterations 40
        --schedule constant --milestones= --log-every 10 --device $DEVICE --precision fp32 --channels-last off
        --runs-dir $RUNS"
t() { echo; echo "== $*"; timeout 240 "$@"; echo "exit $?"; }
t $TORCHRUN --nproc-per-node 1 tui_app.py train $COMMON $SYNC --name nccl1-syncbn
python tui_app.py show nccl1-syncbn --runs-dir "$RUNS" | head -12
GPUS=${GPUS:-$(python -c "import torch; print(torch.cuda.device_count())")}
if [ "$GPUS" -ge 2 ]; then
  t $TORCHRUN --nproc-per-node 2 tui_app.py train $COMMON --deterministic --name ddp2
  t python tui_app.py train $COMMON --deterministic --micro-batches 2 --name one-mb2
  t $TORCHRUN --nproc-per-node 2 tui_app.py train $COMMON $SYNC --name ddp2-syncbn
  python - "$RUNS" <<'EOF'
import sys
import torch
from core.train.checkpoint import load_checkpoint
from core.train.models import cifar_resnet
names = {n for n, _ in cifar_resnet(20, "A", 16).named_parameters()}
a, b = (load_checkpoint(f"{sys.argv[1]}/{r}/checkpoint.pt")["model"] for r in ("ddp2", "one-mb2"))
print("DDP x2 vs one process --micro-batches 2, max |param diff| after 40 iterations:",
      max((a[k] - b[k]).abs().max().item() for k in names))
EOF
else
  echo "one GPU: the 2-process checks need two"
fi
python tui_app.py runs --runs-dir "$RUNS"
