#!/usr/bin/env bash
# Every GPU figure issues 5 and 19 ask for (~10-12 minutes on an H100/H200 in all): first the gpu test tier
# (tests/gpu), then the figures. Needs torch alone (no textual, no submitit, no install: run from the repo root).
#
#   bash bench/gpu_checks.sh                       # every section, in this order
#   bash bench/gpu_checks.sh tier compile summary  # some sections (a device call is limited to 10 minutes: split
#   bash bench/gpu_checks.sh throughput memory epoch queue summary       #  the whole into two such calls)
# Sections: tier (tests/gpu), throughput (engine vs the usual loop), compile (eager vs --compile default vs
# reduce-overhead, i.e. CUDA graphs), memory, epoch (a real trainer epoch, eager and with CUDA graphs), queue
# (--per-device 1 vs 4 on one GPU), summary (the compile and queue comparisons from the JSON written so far); init
# (asked for by name only: bash bench/gpu_checks.sh init) the paper's fan-out init against fan-in, paired by seed.
#
# On the lent device machine ../shared is not there, so carry its data in an ignored folder first:
#   mkdir -p .shared && cp ../shared/data/cifar10-jpeg.npz ../shared/tools/cifar10_jpeg.py .shared/
#   run(command="bash bench/gpu_checks.sh tier compile summary", carry=[".shared"], timeout_s=600)
# Results: the printed tables, and JSON under $OUT (or bench/results/).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
SECTIONS=" ${*:-tier throughput compile memory epoch queue summary} "
want() { [[ "$SECTIONS" == *" $1 "* ]]; }
DATA=.data
if [ ! -d "$DATA/cifar-10-batches-py" ]; then
  if [ -f ../shared/tools/cifar10_jpeg.py ]; then python ../shared/tools/cifar10_jpeg.py "$DATA"
  else python .shared/cifar10_jpeg.py "$DATA" --npz .shared/cifar10-jpeg.npz; fi
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap,compute_mode --format=csv
python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'bf16', torch.cuda.is_bf16_supported())"
B="python bench/throughput.py --device cuda --data-dir $DATA"
t() { echo; echo "== $*"; timeout 240 "$@"; }
# 0. the gpu test tier (tests/gpu: one assertion each that only a GPU can show); under pytest where it is installed
if want tier; then
  echo "== gpu tier"
  if python -c "import pytest" 2>/dev/null; then
    python -m pytest -q -m gpu tests/gpu -p no:cacheprovider -rs 2>&1 | tail -20
  else
    python tests/gpu/test_gpu.py
  fi
fi
# 1. engine vs the usual loop, batch 128: precision auto (bf16) and fp32; ratio targets: R20 >= 5x, R110 >= 3x.
#    auto.json is also the eager figure the compile section is compared with.
if want throughput; then
  t $B --depths 20,56,110 --iters 200 --json "$OUT/auto.json"
  t $B --depths 20,110 --iters 200 --precision fp32 --json "$OUT/fp32.json"
fi
# 2. --compile (compile time printed separately): eager (auto.json; measured here when section 1 was not run),
#    default, reduce-overhead (CUDA graphs: ResNet-20 at batch 128 is bound by ~200 kernel launches a step)
if want compile; then
  [ -f "$OUT/auto.json" ] || t $B --depths 20,110 --iters 200 --json "$OUT/auto.json"
  t $B --depths 20,110 --iters 200 --compile default --json "$OUT/compile.json"
  t $B --depths 20,110 --iters 200 --compile reduce-overhead --json "$OUT/graphs.json"
fi
# 3. memory: ResNet-1202 at batch 128 (must fit in 80 GB); the lab report's ResNet-110 width 64 batch 64
if want memory; then
  t $B --depths 1202 --iters 10 --warmup 2 --json "$OUT/r1202.json"
  t $B --depths 110 --width 64 --batch-size 64 --iters 30 --json "$OUT/lab110w64.json"
fi
# 4. a real epoch through the trainer (391 iterations + test evaluation; target <= 2 s) and its records; then the
#    same with CUDA graphs (compiled before the first step: status compiling, compile_s apart from the epochs)
if want epoch; then
  for mode in off reduce-overhead; do
    t python tui_app.py train --preset he2016 --depth 20 --epochs 3 --data-dir "$DATA" --no-download \
        --runs-dir "$OUT/runs" --name "gpu-r20-compile-$mode" --device cuda --compile "$mode"
    python tui_app.py show "gpu-r20-compile-$mode" --runs-dir "$OUT/runs" | tail -8
  done
fi
# 5. the queue (issue 9): four ResNet-20 runs of 3 epochs on one GPU, one at a time vs four sharing it
if want queue; then
  Q="python bench/queue_latency.py --devices cuda:0 --depth 20 --width 16 --epochs 3 --runs 4 --dataset cifar10"
  Q="$Q --data-dir $DATA --train-images 0"
  t $Q --per-device 1 --json "$OUT/queue_pd1.json"
  t $Q --per-device 4 --json "$OUT/queue_pd4.json"
fi
# 6. the comparisons issue 19 asks for, from the JSON above: images/s of eager, default compile and CUDA graphs;
#    one run at a time on the GPU against four sharing it
# 6. init (not in the default list: ~5 minutes): the paper's fan-out init against fan-in on all 50,000 training images
#    (issue 28): ResNet-20, batch 128, lr 0.1 /10 after epoch 2, 3 epochs, per-channel normalisation, 5 seeds paired
if want init; then
  echo; echo "== init: he-fan-out against he-fan-in"
  timeout 560 python bench/fidelity.py --data-dir $DATA --device cuda --epochs 3 --milestones 2 --seeds 1 2 3 4 5 \
    --engine-normalize channel --init he-fan-out he-fan-in --skip-loop --json "$OUT/init.json"
fi
want summary || exit 0
python - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
def load(name):
    p = out / name
    return json.loads(p.read_text()) if p.exists() else None
modes = {m: load(f) for m, f in (("eager", "auto.json"), ("default", "compile.json"), ("reduce-overhead", "graphs.json"))}
print("\n== --compile: engine images/s at batch 128 (precision auto; ratio to eager)")
for depth in (20, 110):
    eager = next((r["engine_img_s"] for r in modes["eager"] or [] if r["depth"] == depth), None)
    cells = []
    for mode, rows in modes.items():
        r = next((r for r in rows or [] if r["depth"] == depth), None)
        cells.append(f"{mode} " + ("-" if r is None else f"{r['engine_img_s']:,.0f}" + (
            f" ({r['engine_img_s'] / eager:.2f}x, compile {r['compile_s']:.0f} s)" if eager and r["compile_s"] else "")))
    print(f"ResNet-{depth}: " + "; ".join(cells))
pd1, pd4 = load("queue_pd1.json"), load("queue_pd4.json")
if pd1 and pd4:
    print(f"== queue, 4 ResNet-20 runs on one GPU: --per-device 1 wall {pd1['wall_s']} s, --per-device 4 wall "
          f"{pd4['wall_s']} s ({pd1['wall_s'] / pd4['wall_s']:.2f}x; at most {pd4['max_concurrent']} at once, "
          f"median run {pd1['per_run_s']} s alone vs {pd4['per_run_s']} s shared)")
EOF
