// Executors against a ceiling, in one run on this machine: the TypeScript executor, the torch
// executor through its real child protocol (files and frames included), and a bare PyTorch
// training loop of the same model written below as the ceiling. Each is measured several
// times, interleaved, and its best kept: the machine is shared, and interleaving spreads
// other load over all three. Ends with
//   executors: torch 0.93× ceiling, typescript 0.21× ceiling (<model>, <threads> threads)
//   pnpm bench executors     (BENCH_MODEL=small BENCH_STEPS=10 BENCH_REPEATS=3 BENCH_DEVICE=cpu)
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { countParams, initParams, presetConfig } from '@barnraise/trainer'
import type { Executor } from '../node-agent/src/executors/executor.ts'
import { TorchExecutor } from '../node-agent/src/executors/torch-executor.ts'
import { TypeScriptExecutor } from '../node-agent/src/executors/typescript-executor.ts'
import { randomBatches, syntheticUnit } from '../node-agent/src/executors/synthetic-unit.ts'

const MODEL = process.env.BENCH_MODEL ?? 'small'
const STEPS = Number(process.env.BENCH_STEPS ?? 10)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3)
const DEVICE = process.env.BENCH_DEVICE ?? 'cpu'
const BATCH = Number(process.env.BENCH_BATCH ?? 8)
const SEQ_LEN = Number(process.env.BENCH_SEQ ?? 128)
const THREADS = Number(process.env.BENCH_THREADS ?? os.availableParallelism())

// The ceiling: the same Llama in plain PyTorch (nn.Linear, RMSNorm, rotate_half RoPE, GQA,
// SwiGLU), the same AdamW and clipping, random tokens; prints its tokens/s after warm-up steps.
const BARE_LOOP = String.raw`
import json, math, sys, time
import torch, torch.nn.functional as F
from torch import nn
c, batch, T, steps, device, threads = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), torch.device(sys.argv[5]), int(sys.argv[6])
if device.type == 'cpu': torch.set_num_threads(threads)
torch.manual_seed(0)
d, H, KV, hd, eps = c['hidden_size'], c['num_attention_heads'], c['num_key_value_heads'], c['head_dim'], c['rms_norm_eps']
bf16 = device.type == 'cuda' and torch.cuda.is_bf16_supported()
sdpa = hasattr(F, 'scaled_dot_product_attention')
def rms(x, w):
    h = x.float(); return w * (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
def rot(z): return torch.cat([-z[..., hd // 2:], z[..., :hd // 2]], -1)
class Block(nn.Module):
    def __init__(s):
        super().__init__()
        L = lambda i, o: nn.Linear(i, o, bias=False)
        s.q, s.k, s.v, s.o = L(d, H * hd), L(d, KV * hd), L(d, KV * hd), L(H * hd, d)
        s.g, s.u, s.dn = L(d, c['intermediate_size']), L(d, c['intermediate_size']), L(c['intermediate_size'], d)
        s.n1, s.n2 = nn.Parameter(torch.ones(d)), nn.Parameter(torch.ones(d))
    def forward(s, x, cos, sin):
        b, t, _ = x.shape
        h = rms(x, s.n1)
        q, k, v = (p(h).view(b, t, -1, hd).transpose(1, 2) for p in (s.q, s.k, s.v))
        q, k = q * cos.to(q.dtype) + rot(q) * sin.to(q.dtype), k * cos.to(k.dtype) + rot(k) * sin.to(k.dtype)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        if sdpa: a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            sc = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
            a = sc.float().masked_fill(torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1), float('-inf')).softmax(-1).to(v.dtype) @ v
        x = x + s.o(a.transpose(1, 2).reshape(b, t, -1))
        h = rms(x, s.n2)
        return x + s.dn(F.silu(s.g(h)) * s.u(h))
class Llama(nn.Module):
    def __init__(s):
        super().__init__()
        s.emb = nn.Embedding(c['vocab_size'], d)
        s.blocks = nn.ModuleList(Block() for _ in range(c['num_hidden_layers']))
        s.norm = nn.Parameter(torch.ones(d))
        s.head = None if c['tie_word_embeddings'] else nn.Linear(d, c['vocab_size'], bias=False)
    def forward(s, ids, cos, sin):
        x = s.emb(ids)
        for blk in s.blocks: x = blk(x, cos, sin)
        return F.linear(rms(x, s.norm), s.emb.weight if s.head is None else s.head.weight)
m = Llama().to(device)
inv = 1.0 / (c['rope_theta'] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
ang = torch.outer(torch.arange(T, dtype=torch.float64), inv); ang = torch.cat([ang, ang], -1)
cos, sin = ang.cos().float().to(device), ang.sin().float().to(device)
kw = dict(lr=1e-3, betas=(0.9, 0.95), weight_decay=0.01)
try: opt = torch.optim.AdamW(m.parameters(), fused=True, **kw) if device.type == 'cuda' else torch.optim.AdamW(m.parameters(), **kw)
except (TypeError, RuntimeError): opt = torch.optim.AdamW(m.parameters(), **kw)
data = torch.randint(0, c['vocab_size'], (steps + 2, batch, T + 1)).to(device)
sync = (lambda: torch.cuda.synchronize(device)) if device.type == 'cuda' else (lambda: None)
for i in range(steps + 2):
    if i == 2: sync(); t0 = time.perf_counter()
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = m(data[i, :, :-1], cos, sin)
    loss = F.cross_entropy(logits.float().reshape(-1, c['vocab_size']), data[i, :, 1:].reshape(-1))
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step(); opt.zero_grad(set_to_none=True)
sync()
print(json.dumps({'tokensPerSecond': batch * T * steps / (time.perf_counter() - t0)}))
`

const config = presetConfig(MODEL)
const params = countParams(config)
const gflops = (tokensPerSecond: number): string => (6 * params * tokensPerSecond / 1e9).toFixed(2)
const fmt = (tokensPerSecond: number): string => `${Math.round(tokensPerSecond).toLocaleString('en-US')} tokens/s, ${gflops(tokensPerSecond)} GFLOP/s`

const dir = await mkdtemp(join(os.tmpdir(), 'barnraise-bench-'))
const base = initParams(config, 1).flat
const batches = randomBatches(1, config.vocab_size, BATCH, SEQ_LEN)
const unit = (steps: number): ReturnType<typeof syntheticUnit> => syntheticUnit(config, { innerSteps: steps, batchSize: BATCH, seqLen: SEQ_LEN })
const quiet = { onProgress: () => {}, signal: new AbortController().signal, base, batches }

/** One round through the executor's train(): tokens/s over its wall clock, and over its compute seconds. */
async function round (executor: Executor, name: string): Promise<{ wall: number, compute: number }> {
  const started = performance.now()
  const result = await executor.train({ unit: unit(STEPS), stateDir: join(dir, name), ...quiet })
  const seconds = (performance.now() - started) / 1000
  return { wall: result.tokens / seconds, compute: result.tokens / result.computeSeconds }
}

function bareLoop (python: string): number {
  const out = spawnSync(python, ['-c', BARE_LOOP, JSON.stringify(config), String(BATCH), String(SEQ_LEN), String(STEPS), DEVICE, String(THREADS)], { encoding: 'utf8' })
  if (out.status !== 0) throw new Error(`bare PyTorch loop failed: ${out.stderr}`)
  return (JSON.parse(out.stdout.trim().split('\n').at(-1)!) as { tokensPerSecond: number }).tokensPerSecond
}

const ts = new TypeScriptExecutor({ threads: THREADS })
const torch = await TorchExecutor.start({ device: DEVICE, threads: THREADS })
try {
  console.log(`executors bench — node ${process.version}, ${torch.name} (${torch.python}), ${os.cpus()[0]?.model ?? 'unknown cpu'}`)
  console.log(`model ${MODEL} (${(params / 1e6).toFixed(2)}M parameters), batch ${BATCH} × seq ${SEQ_LEN}, ${STEPS} steps per round, ${THREADS} threads, best of ${REPEATS} interleaved runs`)
  // Warm-up rounds: the worker pool, the child's model and optimizer state.
  await ts.train({ unit: unit(1), stateDir: join(dir, 'ts'), ...quiet })
  await torch.train({ unit: unit(1), stateDir: join(dir, 'torch'), ...quiet })
  const best = { ts: 0, torch: 0, torchCompute: 0, bare: 0 }
  for (let i = 0; i < REPEATS; i++) {
    best.bare = Math.max(best.bare, bareLoop(torch.python))
    const t = await round(torch, 'torch')
    best.torch = Math.max(best.torch, t.wall)
    best.torchCompute = Math.max(best.torchCompute, t.compute)
    best.ts = Math.max(best.ts, (await round(ts, 'ts')).wall)
  }
  console.log(`typescript executor: ${fmt(best.ts)}`)
  console.log(`torch executor (whole round through the child protocol): ${fmt(best.torch)} (inner loop alone ${fmt(best.torchCompute)})`)
  console.log(`bare PyTorch loop (ceiling): ${fmt(best.bare)}`)
  console.log(`executors: torch ${(best.torch / best.bare).toFixed(2)}× ceiling, typescript ${(best.ts / best.bare).toFixed(2)}× ceiling (${MODEL}, ${THREADS} threads)`)
} finally {
  await ts.close()
  await torch.close()
  await rm(dir, { recursive: true, force: true })
}
