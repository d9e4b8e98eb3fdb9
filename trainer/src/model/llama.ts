// The Llama decoder, forward and backward, as Hugging Face's LlamaForCausalLM computes it:
// embedding → layers of [x += o(attn(rope(q(n1(x))), rope(k(n1(x))), v(n1(x))));
// x += down(silu(gate(n2(x))) · up(n2(x)))] → final RMSNorm → head → mean cross-entropy.
// See trainer/test-data/golden/README.md for the exact conventions.
import { transpose } from '../kernels/matmul.ts'
import { attentionBackward, attentionForward } from './attention.ts'
import type { AttentionShape } from './attention.ts'
import { crossEntropy } from './cross-entropy.ts'
import { linearBackward, linearForward } from './linear.ts'
import { ModelError } from './model-error.ts'
import { countParams, createParamSet } from './params.ts'
import type { ParamSet } from './params.ts'
import { rmsnormBackward, rmsnormForward } from './rmsnorm.ts'
import { applyRope } from './rope.ts'
import { swigluBackward, swigluForward } from './swiglu.ts'
import { resolveWeights } from './weights.ts'
import type { ModelWeights } from './weights.ts'
import { workspaceFor } from './workspace.ts'
import type { Workspace } from './workspace.ts'

/** inputIds holds batch rows of seqLen+1 tokens; the model reads [:, :T] and predicts [:, 1:]. Returns fresh logits [batch, seqLen, vocab] and the mean loss. */
export function forward (params: ParamSet, inputIds: Int32Array, batch: number, seqLen: number): { logits: Float32Array, loss: number } {
  const ws = prepare(params, inputIds, batch, seqLen, false)
  runForward(resolveWeights(params), ws)
  const logits = ws.logits.slice()
  const loss = crossEntropy(ws.logits, ws.targets, ws.dims.rows, ws.dims.vocab, false)
  return { logits, loss }
}

/** Mean loss only, keeping no activations for backward (for evaluation). */
export function evaluateLoss (params: ParamSet, inputIds: Int32Array, batch: number, seqLen: number): number {
  const ws = prepare(params, inputIds, batch, seqLen, false)
  runForward(resolveWeights(params), ws)
  return crossEntropy(ws.logits, ws.targets, ws.dims.rows, ws.dims.vocab, false)
}

/** Loss and d loss / d weights; `grads` (same config) is overwritten, not accumulated, when given. */
export function lossAndGrad (
  params: ParamSet, inputIds: Int32Array, batch: number, seqLen: number, grads?: ParamSet
): { loss: number, grads: ParamSet } {
  if (grads === undefined) grads = createParamSet(params.config)
  else if (grads.flat.length !== params.flat.length) {
    throw new ModelError('ERR_BAD_PARAMS', `grads hold ${grads.flat.length} values but the model has ${params.flat.length}`)
  }
  const ws = prepare(params, inputIds, batch, seqLen, true)
  const w = resolveWeights(params)
  const g = resolveWeights(grads)
  runForward(w, ws)
  const loss = crossEntropy(ws.logits, ws.targets, ws.dims.rows, ws.dims.vocab, true)
  grads.flat.fill(0)
  runBackward(w, g, ws)
  return { loss, grads }
}

/** Checks the call's shape and token ids, and loads inputs/targets into the workspace. */
function prepare (params: ParamSet, inputIds: Int32Array, batch: number, seqLen: number, training: boolean): Workspace {
  const c = params.config
  if (!Number.isSafeInteger(batch) || batch < 1) throw new ModelError('ERR_BAD_INPUT', `batch ${batch} must be a positive integer`)
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) throw new ModelError('ERR_BAD_INPUT', `seqLen ${seqLen} must be a positive integer`)
  if (seqLen > c.max_position_embeddings) {
    throw new ModelError('ERR_BAD_INPUT', `seqLen ${seqLen} exceeds the model's max_position_embeddings (${c.max_position_embeddings})`)
  }
  const window = seqLen + 1
  if (inputIds.length !== batch * window) {
    throw new ModelError('ERR_BAD_INPUT', `inputIds has ${inputIds.length} tokens; batch ${batch} × (seqLen ${seqLen} + 1) needs ${batch * window}`)
  }
  for (let i = 0; i < inputIds.length; i++) {
    const id = inputIds[i]
    if (id < 0 || id >= c.vocab_size) {
      throw new ModelError('ERR_TOKEN_OUT_OF_RANGE', `token id ${id} at row ${Math.floor(i / window)}, position ${i % window} is outside the vocabulary [0, ${c.vocab_size})`)
    }
  }
  if (params.flat.length !== countParams(c)) {
    throw new ModelError('ERR_BAD_PARAMS', `parameter set holds ${params.flat.length} values but its config needs ${countParams(c)}`)
  }
  const ws = workspaceFor(c, batch, seqLen, training)
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seqLen; t++) {
      ws.inputs[b * seqLen + t] = inputIds[b * window + t]
      ws.targets[b * seqLen + t] = inputIds[b * window + t + 1]
    }
  }
  return ws
}

function attentionShape (ws: Workspace): AttentionShape {
  const m = ws.dims
  return { batch: m.batch, seqLen: m.seqLen, heads: m.heads, kvHeads: m.kvHeads, headDim: m.headDim }
}

/** Fills the workspace's activations and logits. */
function runForward (w: ModelWeights, ws: Workspace): void {
  const m = ws.dims
  const { rows, d, qDim, kvDim, inter } = m
  const x0 = ws.resid[0]
  for (let r = 0; r < rows; r++) {
    const from = ws.inputs[r] * d
    x0.set(w.embed.subarray(from, from + d), r * d)
  }
  const shape = attentionShape(ws)
  for (let l = 0; l < m.layers; l++) {
    const lw = w.layers[l]
    const a = ws.layers[l]
    const x = ws.resid[l]
    rmsnormForward(x, lw.inputNorm, a.h1, a.rstd1, rows, d, m.eps)
    linearForward(a.h1, lw.q, a.q, rows, d, qDim)
    linearForward(a.h1, lw.k, a.k, rows, d, kvDim)
    linearForward(a.h1, lw.v, a.v, rows, d, kvDim)
    applyRope(a.q, rows, m.heads, ws.rope, false)
    applyRope(a.k, rows, m.kvHeads, ws.rope, false)
    attentionForward(a.q, a.k, a.v, a.attn, a.probs, ws.attention, shape)
    linearForward(a.attn, lw.o, ws.proj, rows, qDim, d)
    addInto(x, ws.proj, a.resid2, rows * d)
    rmsnormForward(a.resid2, lw.postNorm, a.h2, a.rstd2, rows, d, m.eps)
    linearForward(a.h2, lw.gate, a.gate, rows, d, inter)
    linearForward(a.h2, lw.up, a.up, rows, d, inter)
    swigluForward(a.gate, a.up, a.act, rows * inter)
    linearForward(a.act, lw.down, ws.proj, rows, inter, d)
    addInto(a.resid2, ws.proj, ws.resid[l + 1], rows * d)
  }
  rmsnormForward(ws.resid[m.layers], w.norm, ws.hf, ws.rstdf, rows, d, m.eps)
  linearForward(ws.hf, w.head, ws.logits, rows, d, m.vocab)
}

function keptProbs (probs: Float32Array | null): Float32Array {
  if (probs === null) throw new ModelError('ERR_BAD_INPUT', 'backward needs the attention weights of a training forward pass')
  return probs
}

/** out = a + b elementwise (out may alias a). */
function addInto (a: Float32Array, b: Float32Array, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i] + b[i]
}

/** Accumulates every weight gradient into `g` (zeroed by the caller) from ws.logits holding d loss / d logits. */
function runBackward (w: ModelWeights, g: ModelWeights, ws: Workspace): void {
  const m = ws.dims
  const { rows, d, qDim, kvDim, inter } = m
  const s = ws.backward
  if (s === null) throw new ModelError('ERR_BAD_INPUT', 'backward needs a training workspace')
  const { dx, dh, xT } = s
  // Head: logits = hf · headᵀ. When tied, g.head is g.embed, so both contributions add up.
  transpose(ws.hf, xT, rows, d)
  linearBackward(ws.logits, xT, w.head, dh, g.head, rows, d, m.vocab, false, s)
  dx.fill(0)
  rmsnormBackward(dh, ws.resid[m.layers], w.norm, ws.rstdf, dx, g.norm, rows, d)
  const shape = attentionShape(ws)
  for (let l = m.layers - 1; l >= 0; l--) {
    const lw = w.layers[l]
    const lg = g.layers[l]
    const a = ws.layers[l]
    // MLP branch: resid[l+1] = resid2 + down(act); dx passes straight through to resid2.
    transpose(a.act, xT, rows, inter)
    linearBackward(dx, xT, lw.down, s.dAct, lg.down, rows, inter, d, false, s)
    swigluBackward(s.dAct, a.gate, a.up, s.dAct, s.dUp, rows * inter)
    transpose(a.h2, xT, rows, d)
    linearBackward(s.dAct, xT, lw.gate, dh, lg.gate, rows, d, inter, false, s)
    linearBackward(s.dUp, xT, lw.up, dh, lg.up, rows, d, inter, true, s)
    rmsnormBackward(dh, a.resid2, lw.postNorm, a.rstd2, dx, lg.postNorm, rows, d)
    // Attention branch: resid2 = resid[l] + o(attn).
    transpose(a.attn, xT, rows, qDim)
    linearBackward(dx, xT, lw.o, s.dAttn, lg.o, rows, qDim, d, false, s)
    attentionBackward(s.dAttn, a.q, a.k, a.v, keptProbs(a.probs), s.dq, s.dk, s.dv, ws.attention, shape)
    applyRope(s.dq, rows, m.heads, ws.rope, true)
    applyRope(s.dk, rows, m.kvHeads, ws.rope, true)
    transpose(a.h1, xT, rows, d)
    linearBackward(s.dq, xT, lw.q, dh, lg.q, rows, d, qDim, false, s)
    linearBackward(s.dk, xT, lw.k, dh, lg.k, rows, d, kvDim, true, s)
    linearBackward(s.dv, xT, lw.v, dh, lg.v, rows, d, kvDim, true, s)
    rmsnormBackward(dh, ws.resid[l], lw.inputNorm, a.rstd1, dx, lg.inputNorm, rows, d)
  }
  // Embedding lookup: scatter-add each row's gradient to its token's row.
  for (let r = 0; r < rows; r++) {
    const to = ws.inputs[r] * d
    const from = r * d
    for (let i = 0; i < d; i++) g.embed[to + i] += dx[from + i]
  }
}
