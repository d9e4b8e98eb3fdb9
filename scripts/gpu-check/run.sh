#!/usr/bin/env bash
# Issue 10's GPU checks in one go, for a lent device machine (PyTorch with CUDA and
# transformers, no Node, no network). Prepare first, here, where Node runs:
#   bin/node scripts/gpu-check/prepare.ts        # writes test-artifacts/gpu-check (git-ignored)
# then run from the repository root on the device, carrying that folder:
#   run(command='bash scripts/gpu-check/run.sh', carry=['test-artifacts/gpu-check'], timeout_s=600)
# Every step runs even if one before it failed; everything printed is also kept in $OUT.
# The limits add up to 590 s on one GPU (expected: about 4 minutes): bench-1b gets the most, as
# each of its rounds writes and reads ~17 GB of files (weights both ways, optimizer state).
set -u
OUT=${OUT:-$(mktemp -d)}
# Output reaches $OUT line by line even from a step that times out (Python block-buffers a pipe).
export PYTHONUNBUFFERED=1
# No network on the device: any Hugging Face Hub call must fail at once, not wait on timeouts.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
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
step versions 40 python3 -c '
import importlib, sys
print("python", sys.version.split()[0])
for name in ("torch", "transformers", "tokenizers", "safetensors", "numpy"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as err:
        print(name, "NOT IMPORTABLE:", type(err).__name__, err)
import torch
print("cuda", torch.version.cuda, "available", torch.cuda.is_available(), "gpus", torch.cuda.device_count())
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    free, total = torch.cuda.mem_get_info(i)
    print(f"cuda:{i} {p.name} capability {p.major}.{p.minor} {total / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free")
'
step selftest 60 python3 -m barnraise_torch.selftest --device cuda
step hf-load 90 python3 ../scripts/gpu-check/hf_load_check.py ../test-artifacts/gpu-check --device cuda
# The coordinator's --evaluator torch on one checkpoint, on the GPU and the CPU: float32 on both,
# so the two losses (and the TypeScript one) agree within 1e-4.
step evaluate 40 python3 ../scripts/gpu-check/evaluate_check.py ../test-artifacts/gpu-check --devices cuda,cpu
step bench-125m 100 python3 -m barnraise_torch.bench --preset 125m --device cuda --json
step bench-1b 240 python3 -m barnraise_torch.bench --preset 1b --device cuda --batch 8 --seq 2048 --json
if [ "$(python3 -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)" -gt 1 ]; then
  step bench-125m-all-gpus 150 python3 -m barnraise_torch.bench --preset 125m --device cuda:all --json
fi
echo "=== done; figures in $OUT"
