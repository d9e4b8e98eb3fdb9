// Activation and scratch buffers for one (config, batch, seqLen) shape, allocated once and
// reused across steps: a training step touches tens of megabytes, and reallocating them every
// step would make the garbage collector a large share of the run time.
import type { LlamaConfig } from '@barnraise/protocol'
import type { RopeTable } from './rope.ts'
import { ropeTable } from './rope.ts'
import type { LinearScratch } from './linear.ts'
import { attentionScratch } from './attention.ts'
import type { AttentionScratch } from './attention.ts'

export interface Dims {
  batch: number
  seqLen: number
  rows: number
  d: number
  qDim: number
  kvDim: number
  inter: number
  vocab: number
  heads: number
  kvHeads: number
  headDim: number
  layers: number
  eps: number
}

/** What the forward pass keeps for one layer (shared across layers when not training). */
export interface LayerActivations {
  h1: Float32Array
  rstd1: Float32Array
  q: Float32Array
  k: Float32Array
  v: Float32Array
  probs: Float32Array | null
  attn: Float32Array
  resid2: Float32Array
  h2: Float32Array
  rstd2: Float32Array
  gate: Float32Array
  up: Float32Array
  act: Float32Array
}

export interface Workspace {
  key: string
  dims: Dims
  rope: RopeTable
  inputs: Int32Array
  targets: Int32Array
  /** resid[l] is the residual stream entering layer l; resid[layers] enters the final norm. */
  resid: Float32Array[]
  layers: LayerActivations[]
  proj: Float32Array
  hf: Float32Array
  rstdf: Float32Array
  logits: Float32Array
  attention: AttentionScratch
  backward: BackwardScratch | null
}

export interface BackwardScratch extends LinearScratch {
  dx: Float32Array
  dh: Float32Array
  dAttn: Float32Array
  dq: Float32Array
  dk: Float32Array
  dv: Float32Array
  dAct: Float32Array
  dUp: Float32Array
  xT: Float32Array
}

/** The sizes a call works with. */
export function dimsOf (config: LlamaConfig, batch: number, seqLen: number): Dims {
  return {
    batch,
    seqLen,
    rows: batch * seqLen,
    d: config.hidden_size,
    qDim: config.num_attention_heads * config.head_dim,
    kvDim: config.num_key_value_heads * config.head_dim,
    inter: config.intermediate_size,
    vocab: config.vocab_size,
    heads: config.num_attention_heads,
    kvHeads: config.num_key_value_heads,
    headDim: config.head_dim,
    layers: config.num_hidden_layers,
    eps: config.rms_norm_eps
  }
}

function layerActivations (m: Dims, training: boolean): LayerActivations {
  const { rows } = m
  return {
    h1: new Float32Array(rows * m.d),
    rstd1: new Float32Array(rows),
    q: new Float32Array(rows * m.qDim),
    k: new Float32Array(rows * m.kvDim),
    v: new Float32Array(rows * m.kvDim),
    probs: training ? new Float32Array(m.batch * m.heads * m.seqLen * m.seqLen) : null,
    attn: new Float32Array(rows * m.qDim),
    // Outside training the residual stream is updated in place in resid[0].
    resid2: new Float32Array(training ? rows * m.d : 0),
    h2: new Float32Array(rows * m.d),
    rstd2: new Float32Array(rows),
    gate: new Float32Array(rows * m.inter),
    up: new Float32Array(rows * m.inter),
    act: new Float32Array(rows * m.inter)
  }
}

function createWorkspace (key: string, m: Dims, theta: number, training: boolean): Workspace {
  const { rows } = m
  const layers: LayerActivations[] = []
  const resid: Float32Array[] = [new Float32Array(rows * m.d)]
  if (training) {
    for (let l = 0; l < m.layers; l++) {
      layers.push(layerActivations(m, true))
      resid.push(new Float32Array(rows * m.d))
    }
  } else {
    const shared = layerActivations(m, false)
    shared.resid2 = resid[0]
    for (let l = 0; l < m.layers; l++) {
      layers.push(shared)
      resid.push(resid[0])
    }
  }
  const widest = Math.max(m.d, m.qDim, m.kvDim, m.inter, m.vocab)
  return {
    key,
    dims: m,
    rope: ropeTable(m.seqLen, m.headDim, theta),
    inputs: new Int32Array(rows),
    targets: new Int32Array(rows),
    resid,
    layers,
    proj: new Float32Array(rows * m.d),
    hf: new Float32Array(rows * m.d),
    rstdf: new Float32Array(rows),
    logits: new Float32Array(rows * m.vocab),
    attention: attentionScratch(m.seqLen, m.headDim),
    backward: training
      ? {
          dx: new Float32Array(rows * m.d),
          dh: new Float32Array(rows * m.d),
          dAttn: new Float32Array(rows * m.qDim),
          dq: new Float32Array(rows * m.qDim),
          dk: new Float32Array(rows * m.kvDim),
          dv: new Float32Array(rows * m.kvDim),
          dAct: new Float32Array(rows * m.inter),
          dUp: new Float32Array(rows * m.inter),
          xT: new Float32Array(rows * Math.max(m.d, m.qDim, m.inter)),
          dyT: new Float32Array(rows * widest),
          wT: new Float32Array(Math.max(m.vocab * m.d, m.inter * m.d, m.qDim * m.d, m.kvDim * m.d))
        }
      : null
  }
}

/**
 * Bytes a training workspace for this shape allocates (what `workspaceFor(…, true)` holds), so a
 * caller can refuse a shape before allocating it: attention probabilities alone are
 * layers × batch × heads × seqLen² floats. Kept beside `createWorkspace`, and tested against
 * it, so the two stay in step.
 */
export function trainingWorkspaceBytes (config: LlamaConfig, batch: number, seqLen: number): number {
  const m = dimsOf(config, batch, seqLen)
  const { rows, d, qDim, kvDim, inter, vocab } = m
  const tt = m.seqLen * m.seqLen
  const perLayer = rows * (3 * d + 2 * qDim + 2 * kvDim + 3 * inter + 2) + m.batch * m.heads * tt
  const residual = (m.layers + 1) * rows * d
  const head = rows * (2 * d + 1 + vocab)
  const attention = 10 * m.seqLen * m.headDim + 4 * tt
  const backward = rows * (2 * d + 2 * qDim + 2 * kvDim + 2 * inter + Math.max(d, qDim, inter) + Math.max(d, qDim, kvDim, inter, vocab)) +
    Math.max(vocab * d, inter * d, qDim * d, kvDim * d)
  const floats = m.layers * perLayer + residual + head + attention + backward
  // Token ids (inputs, targets) are int32; the RoPE table is float64 cos and sin of seqLen × headDim/2.
  return 4 * floats + 4 * 2 * rows + 8 * m.seqLen * m.headDim
}

/** Bytes of the attention probabilities a training workspace keeps (the part growing with seqLen²): one [batch, heads, T, T] per layer plus 4 T² of scratch. */
export function trainingAttentionBytes (config: LlamaConfig, batch: number, seqLen: number): number {
  const tt = seqLen * seqLen
  return 4 * (config.num_hidden_layers * batch * config.num_attention_heads * tt + 4 * tt)
}

// One cached workspace per mode: a trainer calls with one shape over and over; a second shape
// (say, evaluation batches) replaces the first rather than piling up memory.
const cache: { train?: Workspace, eval?: Workspace } = {}

/** The workspace for this shape, reused from the previous call when the shape matches. */
export function workspaceFor (config: LlamaConfig, batch: number, seqLen: number, training: boolean): Workspace {
  const m = dimsOf(config, batch, seqLen)
  const key = JSON.stringify([m, config.rope_theta])
  const slot = training ? 'train' : 'eval'
  const existing = cache[slot]
  if (existing !== undefined && existing.key === key) return existing
  const ws = createWorkspace(key, m, config.rope_theta, training)
  cache[slot] = ws
  return ws
}
