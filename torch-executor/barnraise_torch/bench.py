"""``python3 -m barnraise_torch.bench --preset 125m --device cuda``: the executor against a bare PyTorch loop.

Runs, in one process tree and without Node:

1. the ceiling: a bare PyTorch training loop of the same model, written here independently of
   ``barnraise_torch.model`` (nn.Linear, fused attention when torch has it, the same AdamW,
   clipping and precision), timed after warm-up steps;
2. the executor as the agent drives it: a ``barnraise_torch.server`` child, base weights and token
   batches written as safetensors files, one ``train`` request, θ_local read back. Its tokens/s
   counts the whole round's wall clock (files included); round utilization is the child's
   compute seconds ÷ that wall clock.

Prints tokens/s, achieved TFLOP/s (6 × parameters × tokens/s), MFU against a stated bf16 dense
peak (H100 SXM: 989 TFLOP/s; set ``--peak-tflops`` for other GPUs) and the executor/ceiling ratio.
"""
import argparse
import gc
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

# Dense bf16 tensor-core peaks in TFLOP/s, by a part of the name torch reports ("NVIDIA H100 80GB
# HBM3"); the first key found in the name wins, so the lower-clocked PCIe and NVL cards come
# before the SXM parts whose names they contain.
PEAKS_TFLOPS = {'H100 PCIe': 756.0, 'H100 NVL': 835.0, 'H200 NVL': 835.0, 'GH200': 989.0, 'H100': 989.0, 'H200': 989.0,
                'A100': 312.0, 'L40S': 362.0, 'RTX 4090': 165.0}


def _peak_for(name):
    for key, tflops in PEAKS_TFLOPS.items():
        if key in name:
            return tflops
    return None


def bare_loop(config, batch, seq_len, steps, warmup, device, precision, threads, seed=0):
    """The ceiling: the same Llama written plainly, trained for ``steps`` timed steps.

    Returns (tokens/s, peak bytes allocated on the GPU or None). The model is built on the device
    itself (a 1B model initialised on the CPU and then copied costs tens of seconds), and every
    tensor is released before returning so the executor's child finds the GPU empty.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    c = config
    torch.manual_seed(seed)
    if device.type == 'cpu' and threads:
        torch.set_num_threads(threads)
    hd = c.head_dim
    sdpa = hasattr(F, 'scaled_dot_product_attention')

    gpu = device.type == 'cuda'
    if gpu:
        torch.cuda.reset_peak_memory_stats(device)

    def linear(n_in, n_out):
        return nn.Linear(n_in, n_out, bias=False, device=device)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.q = linear(c.hidden_size, c.num_attention_heads * hd)
            self.k = linear(c.hidden_size, c.num_key_value_heads * hd)
            self.v = linear(c.hidden_size, c.num_key_value_heads * hd)
            self.o = linear(c.num_attention_heads * hd, c.hidden_size)
            self.gate = linear(c.hidden_size, c.intermediate_size)
            self.up = linear(c.hidden_size, c.intermediate_size)
            self.down = linear(c.intermediate_size, c.hidden_size)
            self.n1 = nn.Parameter(torch.ones(c.hidden_size, device=device))
            self.n2 = nn.Parameter(torch.ones(c.hidden_size, device=device))

        def norm(self, x, w):
            h = x.float()
            return w * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + c.rms_norm_eps)).to(x.dtype)

        def forward(self, x, cos, sin):
            b, t, _ = x.shape
            h = self.norm(x, self.n1)
            q = self.q(h).view(b, t, -1, hd).transpose(1, 2)
            k = self.k(h).view(b, t, -1, hd).transpose(1, 2)
            v = self.v(h).view(b, t, -1, hd).transpose(1, 2)
            rot = lambda z: torch.cat([-z[..., hd // 2:], z[..., :hd // 2]], -1)  # noqa: E731
            q = q * cos.to(q.dtype) + rot(q) * sin.to(q.dtype)
            k = k * cos.to(k.dtype) + rot(k) * sin.to(k.dtype)
            g = c.num_attention_heads // c.num_key_value_heads
            k = k.repeat_interleave(g, 1)
            v = v.repeat_interleave(g, 1)
            if sdpa:
                a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
                s = s.float().masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float('-inf'))
                a = s.softmax(-1).to(v.dtype) @ v
            x = x + self.o(a.transpose(1, 2).reshape(b, t, -1))
            h = self.norm(x, self.n2)
            return x + self.down(F.silu(self.gate(h)) * self.up(h))

    class Llama(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(c.vocab_size, c.hidden_size, device=device)
            self.blocks = nn.ModuleList([Block() for _ in range(c.num_hidden_layers)])
            self.norm = nn.Parameter(torch.ones(c.hidden_size, device=device))
            self.head = None if c.tie_word_embeddings else linear(c.hidden_size, c.vocab_size)

        def forward(self, ids, cos, sin):
            x = self.embed(ids)
            for blk in self.blocks:
                x = blk(x, cos, sin)
            h = x.float()
            x = self.norm * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + c.rms_norm_eps)).to(x.dtype)
            return F.linear(x, self.embed.weight if self.head is None else self.head.weight)

    model = Llama()
    inv = 1.0 / (c.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.outer(torch.arange(seq_len, dtype=torch.float64), inv)
    ang = torch.cat([ang, ang], -1)
    cos, sin = ang.cos().float().to(device), ang.sin().float().to(device)
    kwargs = {'lr': 1e-3, 'betas': (0.9, 0.95), 'weight_decay': 0.01}
    try:
        opt = torch.optim.AdamW(model.parameters(), fused=True, **kwargs) if gpu else torch.optim.AdamW(model.parameters(), **kwargs)
    except (TypeError, RuntimeError):
        opt = torch.optim.AdamW(model.parameters(), **kwargs)
    data = torch.randint(0, c.vocab_size, (warmup + steps, batch, seq_len + 1)).to(device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == 'bf16' else _null()
    sync = (lambda: torch.cuda.synchronize(device)) if gpu else (lambda: None)
    started = None
    for i in range(warmup + steps):
        if i == warmup:
            sync()
            started = time.perf_counter()
        with autocast:
            logits = model(data[i, :, :-1], cos, sin)
        loss = F.cross_entropy(logits.float().reshape(-1, c.vocab_size), data[i, :, 1:].reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    sync()
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) if gpu else None
    # The last step's logits and loss too: a live tensor keeps the whole cached block it sits in.
    del model, opt, data, logits, loss, cos, sin
    gc.collect()
    if gpu:
        torch.cuda.empty_cache()
    return batch * seq_len * steps / seconds, peak


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Child:
    """The server as the agent runs it: a subprocess speaking length-prefixed JSON frames."""

    def __init__(self, device, threads):
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.proc = subprocess.Popen([sys.executable, '-m', 'barnraise_torch.server', '--device', device, '--threads', str(threads)],
                                     cwd=here, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.ready = self.recv()
        if self.ready.get('type') != 'ready':
            raise SystemExit(f"bench: the executor did not start: {self.ready.get('code')}: {self.ready.get('message')}")
        self.next_id = 1

    def send(self, frame):
        body = json.dumps(frame).encode()
        self.proc.stdin.write(struct.pack('>I', len(body)) + body)
        self.proc.stdin.flush()

    def recv(self):
        head = self.proc.stdout.read(4)
        if len(head) < 4:
            raise SystemExit(f'bench: the executor exited ({self.proc.wait()})')
        return json.loads(self.proc.stdout.read(struct.unpack('>I', head)[0]))

    def request(self, frame):
        rid = self.next_id
        self.next_id += 1
        self.send({**frame, 'id': rid})
        while True:
            reply = self.recv()
            if reply.get('type') == 'log':
                print(f"executor log: {reply.get('message')}", flush=True)
                continue
            if reply.get('id') != rid:
                continue
            if reply['type'] == 'result':
                return reply['result']
            if reply['type'] == 'error':
                raise SystemExit(f"bench: {reply['code']}: {reply['message']}")

    def close(self):
        self.send({'type': 'shutdown'})
        self.proc.stdin.close()
        self.proc.wait()


def random_base(config, seed=0):
    """Base weights for the bench: norms 1, matrices uniform with standard deviation 0.02.

    Uniform draws cost half of normal ones, which matters for a 1B model (a billion draws on
    one core), and the throughput does not depend on the weights' distribution.
    """
    from .config import param_specs
    rng = np.random.default_rng(seed)
    half_width = 0.02 * math.sqrt(3)
    base = {}
    for name, shape in param_specs(config):
        if len(shape) == 1:
            base[name] = np.ones(shape, np.float32)
            continue
        w = rng.random(shape, dtype=np.float32)
        w -= 0.5
        w *= 2 * half_width
        base[name] = w
    return base


def executor_round(child, config, batch, seq_len, steps, work_dir, precision, checkpointing, state_dir, seed=0, sharding='auto', base=None):
    """One round as the agent runs it, after the coordinator's bytes have arrived: write the base
    weights and batches, one ``train`` request, read θ_local back. Returns (tokens/s over that
    wall clock, the child's result, the wall seconds). Network transfers are not included.
    ``base`` (from ``random_base``) may be shared by rounds; drawing it is not part of the round."""
    from .safetensors import read_file, write_file
    rng = np.random.default_rng(seed)
    if base is None:
        base = random_base(config, seed)
    tokens = rng.integers(0, config.vocab_size, (steps, batch, seq_len + 1), dtype=np.int32)
    files = {k: os.path.join(work_dir, f'{k}.safetensors') for k in ('base', 'batches', 'local')}
    # The clock starts where the agent's part of a round starts: weights and tokens in memory.
    started = time.perf_counter()
    write_file(files['base'], base)
    write_file(files['batches'], {'tokens': tokens})
    result = child.request({
        'type': 'train', 'config': config.to_json(),
        'recipe': {'innerSteps': steps, 'batchSize': batch, 'seqLen': seq_len, 'lr': 3e-4, 'warmupSteps': 10, 'weightDecay': 0.01, 'beta1': 0.9, 'beta2': 0.95, 'gradClip': 1.0},
        'scheduleOffset': 0, 'totalInnerSteps': 10_000, 'baseFile': files['base'], 'batchesFile': files['batches'], 'outFile': files['local'],
        'stateDir': state_dir, 'precision': precision, 'checkpointing': checkpointing, 'sharding': sharding,
    })
    read_file(files['local'])
    wall = time.perf_counter() - started
    return result['tokens'] / wall, result, wall


def main(argv=None):
    """Entry point; prints the figures and ends with one summary line."""
    parser = argparse.ArgumentParser(prog='python3 -m barnraise_torch.bench', description='Executor throughput against a bare PyTorch loop.')
    parser.add_argument('--preset', default='125m', help='model preset (see barnraise_torch/presets.py)')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda, cuda:N, or several: cuda:all, cuda:0,cuda:1 (cpu,cpu)')
    parser.add_argument('--batch', type=int, default=None, help='sequences per step, all devices together (default: 16 per GPU, 8 per CPU rank)')
    parser.add_argument('--seq', type=int, default=None, help='sequence length (default: 1024 on a GPU, 128 on a CPU)')
    parser.add_argument('--steps', type=int, default=None, help='timed steps (default: 30 on a GPU, 10 on a CPU)')
    parser.add_argument('--precision', default='auto', help='auto, bf16 or float32')
    parser.add_argument('--checkpointing', default='auto', help='auto, on or off')
    parser.add_argument('--shard-optimizer', default='auto', choices=('auto', 'on', 'off'), help='several devices: share AdamW\'s moments over them (auto: when a replica does not fit)')
    parser.add_argument('--threads', type=int, default=os.cpu_count() or 1, help='CPU threads (CPU only)')
    parser.add_argument('--peak-tflops', type=float, default=None, help='the device\'s dense bf16 peak for MFU (default: known GPUs; H100 SXM 989)')
    parser.add_argument('--json', action='store_true', help='also print the figures as one JSON line')
    args = parser.parse_args(argv)

    import torch
    from .config import count_params
    from .device import GIB, estimate_bytes, resolve_device, resolve_precision
    from .presets import preset
    from .ranks import parse_device_list
    names = parse_device_list(args.device)
    world = len(names)
    device = resolve_device(names[0])
    gpu = device.type == 'cuda'
    batch = args.batch or (16 if gpu else 8) * world
    if batch < world:
        parser.error(f'--batch {batch} gives some of the {world} devices no rows')
    seq_len = args.seq or (1024 if gpu else 128)
    steps = args.steps or (30 if gpu else 10)
    config = preset(args.preset)
    precision = resolve_precision(args.precision, device)
    params = count_params(config)
    name = torch.cuda.get_device_properties(device).name if gpu else f"CPU ({args.threads} thread{'' if args.threads == 1 else 's'})"
    peak = args.peak_tflops or (_peak_for(name) if gpu else None)
    if world > 1:
        # Several devices: the ceiling is the bare loop on one of them at its share of the
        # batch, times the devices (perfect scaling); MFU is against all of their peaks.
        name = f'{world} × {name}'
        peak = peak * world if peak else None
    print(f'bench: {args.preset} ({params / 1e6:.1f}M parameters), batch {batch} × seq {seq_len}, {steps} steps, {precision}, {name}, torch {torch.__version__}', flush=True)

    one_device, bare_peak = bare_loop(config, batch // world, seq_len, steps, 3, device, precision, args.threads)
    ceiling = world * one_device
    estimate = None
    if gpu:
        estimate, _ = estimate_bytes(config, batch // world, seq_len, precision, False, device)
        print(f'bare PyTorch loop: peak GPU memory {bare_peak / GIB:.1f} GiB allocated; the executor\'s fit estimate for '
              f'{batch // world} × {seq_len} without checkpointing is {estimate / GIB:.1f} GiB', flush=True)
    child = Child(','.join(names) if world > 1 else str(device), args.threads if not gpu else 0)
    base = random_base(config)
    with tempfile.TemporaryDirectory(prefix='barnraise-bench-') as work:
        state = os.path.join(work, 'state')
        executor_round(child, config, batch, seq_len, 3, work, args.precision, args.checkpointing, state, sharding=args.shard_optimizer, base=base)  # warm-up round: model, kernels, optimizer state
        tps, result, wall = executor_round(child, config, batch, seq_len, steps, work, args.precision, args.checkpointing, state, seed=1, sharding=args.shard_optimizer, base=base)
        # Inside the folder's lifetime: the child writes the optimizer state after answering.
        child.close()
    compute_tps = result['tokens'] / result['computeSeconds']
    utilization = result['computeSeconds'] / wall

    def line(label, tokens_per_second):
        tflops = 6 * params * tokens_per_second / 1e12
        mfu = f', MFU {100 * tflops / peak:.1f}%' if peak else ''
        print(f'{label}: {tokens_per_second:,.0f} tokens/s, {tflops * 1000:,.1f} GFLOP/s{mfu}', flush=True)

    line('bare PyTorch loop (ceiling)' if world == 1 else f'bare PyTorch loop on one device × {world} (ceiling)', ceiling)
    line('executor, inner loop only', compute_tps)
    line('executor, whole round through the child protocol', tps)
    print(f"executor details: precision {result['precision']}, attention {result['attention']}, optimizer {result['optimizer']}, "
          f"checkpointing {'on' if result['checkpointing'] else 'off'}{', AdamW sharded over the ranks' if result.get('shardedOptimizer') else ''}, round utilization {100 * utilization:.1f}% "
          f"(compute {result['computeSeconds']:.2f} s of {wall:.2f} s wall, files included)", flush=True)
    if args.json:
        mfu = (lambda t: 6 * params * t / 1e12 / peak) if peak else (lambda t: None)
        print(json.dumps({'preset': args.preset, 'params': params, 'device': name, 'precision': precision, 'batch': batch, 'seqLen': seq_len, 'steps': steps,
                          'torch': torch.__version__, 'ceilingTokensPerSecond': ceiling,
                          'executorTokensPerSecond': tps, 'executorComputeTokensPerSecond': compute_tps, 'utilization': utilization,
                          'peakTflops': peak, 'ceilingMfu': mfu(ceiling), 'executorComputeMfu': mfu(compute_tps), 'executorRoundMfu': mfu(tps),
                          'computeSeconds': result['computeSeconds'], 'wallSeconds': wall, 'checkpointing': result['checkpointing'],
                          'attention': result['attention'], 'optimizer': result['optimizer'],
                          'bareLoopPeakBytes': bare_peak, 'fitEstimateBytes': estimate}), flush=True)
    mfu = f', MFU {100 * 6 * params * tps / 1e12 / peak:.1f}% of {peak:g} TFLOP/s bf16 dense' if peak else ''
    print(f'bench: executor {tps / ceiling:.2f}× bare loop{mfu}, round utilization {100 * utilization:.1f}% ({args.preset}, {name}, {precision})', flush=True)
    return 0


def _main_or_reason(argv=None):
    from .errors import ExecutorFailure
    try:
        return main(argv)
    except ExecutorFailure as err:
        print(f'bench: {err.code}: {err.message}', flush=True)
        return 2


if __name__ == '__main__':
    sys.exit(_main_or_reason())
