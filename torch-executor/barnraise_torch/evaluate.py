"""Held-out losses of a checkpoint (and of it moved along a report's update), in float32.

What the TypeScript trainer's ``evaluateLoss`` / ``lossOverBatches`` compute, so a number from
here and one from the coordinator or another agent agree to float32 rounding: each batch's mean
next-token cross-entropy, then the mean over batches. Two callers:

- the agent's resident child (``evaluate`` request, server.py): a GPU node scores another
  node's report (base, base − Δ, base + Δ) where the TypeScript forward pass would take hours;
- the coordinator, once per checkpoint too costly for its event loop, and anyone checking a
  published validation loss: ``python3 -m barnraise_torch.evaluate`` (one JSON line out).

Always float32 with IEEE matmuls (no TF32, no bf16): two honest scorers must agree to 1e-3 of
the loss, and a checkpoint's curve must not jump where the evaluator changes. A separate model
is built for each request and dropped after it, so the resident training model and optimizer
are never touched.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

from .config import count_params, parse_config
from .device import resolve_device, use_ieee_float32_matmuls
from .errors import ExecutorFailure
from .inner_loop import is_out_of_memory
from .model import HAS_SDPA, LlamaForCausalLM
from .safetensors import DTYPES, SafetensorsError, read_file, read_header

# Rows a forward pass takes at once: bounds activation memory (the logits alone are
# rows × T × vocab floats) whatever the batch. Row losses are summed, so chunking changes
# nothing but float summation order. The agent and the coordinator count a scoring task's memory
# with the same figure (trainer/src/model/cost.ts, TORCH_EVALUATE_PASS_BYTES): keep them equal.
ROWS_PER_PASS_BYTES = 1 << 30


def read_windows(path, vocab_size):
    """Token windows [batches, batchSize, seqLen + 1] from a safetensors file's integer ``tokens``, checked against the vocabulary."""
    try:
        with open(path, 'rb') as f:
            _, entries, data_start = read_header(f, os.fstat(f.fileno()).st_size)
        found = [e for e in entries if e[0] == 'tokens']
        if not found or len(found[0][2]) != 3 or found[0][1] not in ('I32', 'I64', 'I16', 'U16', 'I8', 'U8'):
            raise ExecutorFailure('ERR_BAD_INPUT', f'windows {path}: needs integer "tokens" of shape [batches, batchSize, seqLen + 1]')
        _, dtype, shape, begin, _ = found[0]
        if min(shape) < 1 or shape[2] < 2:
            raise ExecutorFailure('ERR_BAD_INPUT', f'windows {path}: shape {list(shape)} holds no window of two tokens')
        tokens = np.array(np.memmap(path, dtype=DTYPES[dtype], mode='r', offset=data_start + begin, shape=tuple(shape)), dtype=np.int64)
    except (OSError, ValueError, SafetensorsError) as err:
        raise ExecutorFailure('ERR_BAD_INPUT', f'windows {path}: {err}') from None
    if tokens.min() < 0 or tokens.max() >= vocab_size:
        raise ExecutorFailure('ERR_BAD_INPUT', f'windows {path}: token ids must lie in [0, {vocab_size})')
    return tokens


def _read_weights(path, model, what):
    """The file's tensors for every model parameter, as float32 numpy arrays in checkpoint order."""
    try:
        _, tensors = read_file(path)
    except (OSError, SafetensorsError) as err:
        raise ExecutorFailure('ERR_BAD_INPUT', f'{what} {path}: {err}') from None
    out = []
    for name, p in model.ordered_parameters():
        t = tensors.get(name)
        if t is None or list(t.shape) != list(p.shape):
            raise ExecutorFailure('ERR_BAD_INPUT', f'{what} {path}: tensor {name} is missing or has shape {None if t is None else list(t.shape)}, expected {list(p.shape)}')
        out.append(t.to_float32())
    return out


def held_out_losses(config, weights_path, windows_path, device, delta_path=None, scales=(0.0,)):
    """For each scale s, the held-out loss of weights + s·delta (or of the weights alone); None where it is not finite."""
    use_ieee_float32_matmuls()
    if len(scales) == 0 or len(scales) > 16 or not all(isinstance(s, (int, float)) and math.isfinite(s) for s in scales):
        raise ExecutorFailure('ERR_BAD_INPUT', 'scales must be 1 to 16 finite numbers')
    if delta_path is None and any(s != 0 for s in scales):
        raise ExecutorFailure('ERR_BAD_INPUT', 'a scale other than 0 needs a delta file')
    windows = read_windows(windows_path, config.vocab_size)
    batches, rows, window = windows.shape
    if window - 1 > config.max_position_embeddings:
        raise ExecutorFailure('ERR_BAD_INPUT', f'windows of {window - 1} tokens exceed the model\'s max_position_embeddings ({config.max_position_embeddings})')
    started = time.perf_counter()
    model = None
    try:
        with torch.no_grad():
            model = LlamaForCausalLM(config, device)
            model.eval()
            model.set_attention(True)
            params = [p for _, p in model.ordered_parameters()]
            base = [torch.from_numpy(a).to(device) for a in _read_weights(weights_path, model, 'weights')]
            delta = None if delta_path is None else [torch.from_numpy(a).to(device) for a in _read_weights(delta_path, model, 'delta')]
            per_pass = max(1, ROWS_PER_PASS_BYTES // max(1, (window - 1) * (config.vocab_size + 4 * config.hidden_size) * 4))
            losses = []
            for s in scales:
                for i, (p, b) in enumerate(zip(params, base)):
                    p.copy_(b)
                    if s != 0:
                        p.add_(delta[i], alpha=float(s))
                total = 0.0
                for batch in windows:
                    summed = 0.0
                    for at in range(0, rows, per_pass):
                        part = torch.from_numpy(batch[at:at + per_pass]).to(device)
                        logits = model(part[:, :-1])
                        summed += float(torch.nn.functional.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), part[:, 1:].reshape(-1), reduction='sum'))
                    total += summed / (rows * (window - 1))
                loss = total / batches
                losses.append(loss if math.isfinite(loss) else None)
    except (RuntimeError, MemoryError) as err:
        if not (isinstance(err, MemoryError) or is_out_of_memory(err)):
            raise
        where = 'GPU' if device.type == 'cuda' else 'host'
        raise ExecutorFailure('ERR_OUT_OF_MEMORY', f'{device} ran out of {where} memory measuring held-out losses of a {count_params(config):,}-parameter model ({str(err).splitlines()[0][:200] if str(err) else "MemoryError"})') from None
    finally:
        model = None
        if device.type == 'cuda':
            torch.cuda.empty_cache()
    return {
        'losses': losses,
        'batches': int(batches),
        'batchSize': int(rows),
        'seqLen': int(window - 1),
        'seconds': time.perf_counter() - started,
        'device': str(device),
        'attention': 'sdpa' if HAS_SDPA else 'explicit',
    }


def main(argv=None):
    """CLI: one JSON line on stdout ({"losses": [...], ...}), or {"error": {"code", "message"}} and exit 1."""
    parser = argparse.ArgumentParser(prog='python3 -m barnraise_torch.evaluate', description='Held-out loss of a Llama checkpoint in float32, as Barnraise measures it.')
    parser.add_argument('--config', required=True, help='config.json of the model (Hugging Face LlamaForCausalLM)')
    parser.add_argument('--weights', required=True, help='the checkpoint: a safetensors file with Hugging Face Llama names')
    parser.add_argument('--windows', required=True, help='safetensors file with integer "tokens" [batches, batchSize, seqLen + 1]')
    parser.add_argument('--delta', help='an update with the weights\' names; each scale s measures weights + s·delta')
    parser.add_argument('--scales', default='0', help='comma-separated scales (default 0: the weights alone)')
    parser.add_argument('--device', default='auto', help='auto (first CUDA device, else CPU), cpu, cuda or cuda:N')
    parser.add_argument('--threads', type=int, default=0, help='CPU threads for torch (0: torch\'s default)')
    args = parser.parse_args(argv)
    try:
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        try:
            with open(args.config, 'rb') as f:
                raw = json.loads(f.read(1 << 20))
        except (OSError, ValueError) as err:
            raise ExecutorFailure('ERR_INVALID_CONFIG', f'config {args.config}: {err}') from None
        try:
            scales = [float(s) for s in args.scales.split(',')]
        except ValueError:
            raise ExecutorFailure('ERR_BAD_INPUT', f'--scales {args.scales!r} is not a comma-separated list of numbers') from None
        result = held_out_losses(parse_config(raw), args.weights, args.windows, resolve_device(args.device), args.delta, scales)
    except ExecutorFailure as err:
        print(json.dumps({'error': {'code': err.code, 'message': err.message}}), flush=True)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
