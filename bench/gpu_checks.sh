#!/usr/bin/env bash
# The GPU check in one command (bench/gpu_checks.py says what it measures, in which order, and where results go).
#
#   bash bench/gpu_checks.sh --budget 420              # on a lent GPU machine: every section that fits 7 minutes
#   bash bench/gpu_checks.sh --device cpu --budget 60  # the rehearsal here (tests/bench/test_gpu_checks.py runs it)
#
# The device machine has torch, numpy, pytest, matplotlib, rich and nvidia-ml-py but no network; the check needs no
# more. Should a later check need a package that is missing there, put its wheels in .whl/ (git-ignored; see
# docs or `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 -d .whl
# NAME`): they are installed from there without the network. ../shared is not on that machine either: carry its data
#   mkdir -p .shared && cp ../shared/data/cifar10-jpeg.npz ../shared/tools/cifar10_jpeg.py .shared/
#   run(command="bash bench/gpu_checks.sh --budget 420", carry=[".shared"], timeout_s=540)
# Results: $OUT/gpu_checks.{json,txt,log} (bench/results/ without $OUT).
set -u
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/reslab-site \
    .whl/*.whl && export PYTHONPATH="/tmp/reslab-site${PYTHONPATH:+:$PYTHONPATH}"
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
exec python3 bench/gpu_checks.py "$@"
