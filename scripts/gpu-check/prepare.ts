// Writes the Hugging Face folders the GPU machine's check loads with transformers (which CI
// cannot install: no PyPI, no Debian package): `bin/node scripts/gpu-check/prepare.ts`.
// Each folder is what a checkpoint download holds (config.json, model.safetensors, the byte
// tokenizer's files), written by the same code the coordinator uses, plus expected.json with
// token ids and the TypeScript trainer's logits for them, which transformers' logits must match.
// Beside them, validation-loss/ holds one checkpoint's evaluation as the coordinator hands it to
// `python3 -m barnraise_torch.evaluate` (its own writeEvaluationFiles), with the TypeScript
// forward pass's loss, for evaluate_check.py to measure on the GPU and the CPU.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseLlamaConfig } from '../../protocol/src/index.ts'
import { exportHuggingFace, forward, initParams, lossOverBatches, presetConfig, storedCheckpointBytes } from '../../trainer/src/index.ts'
import type { ExportDtype } from '../../trainer/src/index.ts'
import { writeEvaluationFiles } from '../../coordinator/src/checkpoints/torch-evaluation.ts'

const OUT = process.argv[2] ?? 'test-artifacts/gpu-check'
const BATCH = 2
const SEQ = 24

// Tied embeddings with grouped-query attention (the CPU presets' shape), and an untied
// multi-head model (the GPU presets' shape), each in float32 and bfloat16.
const models = [
  { name: 'tiny-tied-gqa', config: presetConfig('tiny') },
  { name: 'untied-mha', config: parseLlamaConfig({ vocab_size: 256, hidden_size: 96, intermediate_size: 256, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: 128, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false }) }
]
const ids = Int32Array.from({ length: BATCH * (SEQ + 1) }, (_, i) => (i * 97 + 13) % 256)
for (const { name, config } of models) {
  const params = initParams(config, 11)
  const { logits, loss } = forward(params, ids, BATCH, SEQ)
  for (const dtype of ['F32', 'BF16'] as ExportDtype[]) {
    const dir = join(OUT, `${name}-${dtype.toLowerCase()}`)
    await mkdir(dir, { recursive: true })
    await exportHuggingFace(dir, params, { dtype })
    // Row r's inputs are ids[r·(SEQ+1) … r·(SEQ+1)+SEQ); the last id of each row is a target only.
    const inputs = Array.from({ length: BATCH }, (_, r) => Array.from(ids.subarray(r * (SEQ + 1), r * (SEQ + 1) + SEQ)))
    await writeFile(join(dir, 'expected.json'), JSON.stringify({ dtype, inputs, vocab: config.vocab_size, loss, logits: Array.from(logits) }))
    process.stdout.write(`prepare: ${dir}\n`)
  }
}

// Large enough that the GPU's float32 matmuls are real kernels (where TF32 would show, were it on),
// small enough for the TypeScript forward pass here: 1.9M parameters, 2 × 4 windows of 128 tokens.
{
  const config = parseLlamaConfig({ vocab_size: 384, hidden_size: 192, intermediate_size: 512, num_hidden_layers: 4, num_attention_heads: 6, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-5, rope_theta: 10000, tie_word_embeddings: false })
  const windows = { batches: 2, batchSize: 4, seqLen: 128 }
  const params = initParams(config, 12)
  // Scaled up from the initial weights, whose near-zero logits give ln(vocab) whatever the
  // arithmetic: a loss far from it shows the matmuls' rounding (TF32 would move it by ~1e-3).
  for (let i = 0; i < params.flat.length; i++) params.flat[i]! *= 3
  const batches = Array.from({ length: windows.batches }, (_, b) => Int32Array.from({ length: windows.batchSize * (windows.seqLen + 1) }, (_, i) => (i * 131 + b * 17 + (i >> 5)) % config.vocab_size))
  const dir = join(OUT, 'validation-loss')
  await mkdir(dir, { recursive: true })
  await writeEvaluationFiles(dir, { config, checkpoint: storedCheckpointBytes(config, params.flat), batches, batchSize: windows.batchSize, seqLen: windows.seqLen })
  await writeFile(join(dir, 'expected-loss.json'), JSON.stringify({ loss: lossOverBatches(params, batches, windows), ...windows }))
  process.stdout.write(`prepare: ${dir}\n`)
}
