#!/usr/bin/env bash
# Issue 10's GPU checks in one go, for a lent device machine (PyTorch with CUDA and
# transformers, no Node, no network). Prepare first, here, where Node runs:
#   bin/node scripts/gpu-check/prepare.ts        # writes test-artifacts/gpu-check (git-ignored)
# then run from the repository root on the device, carrying that folder:
#   run(command='bash scripts/gpu-check/run.sh', carry=['test-artifacts/gpu-check'], timeout_s=600)
# Every step runs even if one before it failed; everything printed is also kept in $OUT.
set -u
OUT=${OUT:-$(mktemp -d)}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root/torch-executor"
step () {
  local name=$1 limit=$2; shift 2
  echo "=== $name"
  local started=$SECONDS
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"
  echo "=== $name: exit ${PIPESTATUS[0]} after $((SECONDS - started)) s"
}
date -u +%FT%TZ | tee "$OUT/date.txt"
step gpus 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
step versions 40 python3 -c 'import sys, torch, transformers; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "transformers", transformers.__version__, "gpus", torch.cuda.device_count())'
step selftest 90 python3 -m barnraise_torch.selftest --device cuda
step hf-load 90 python3 ../scripts/gpu-check/hf_load_check.py ../test-artifacts/gpu-check --device cuda
step bench-125m 120 python3 -m barnraise_torch.bench --preset 125m --device cuda --json
step bench-1b 180 python3 -m barnraise_torch.bench --preset 1b --device cuda --batch 8 --seq 2048 --json
if [ "$(python3 -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)" -gt 1 ]; then
  step bench-125m-all-gpus 150 python3 -m barnraise_torch.bench --preset 125m --device cuda:all --json
fi
echo "=== done; figures in $OUT"
