import { test } from 'vitest'
import assert from 'node:assert/strict'
import { runSpecSchema } from '@barnraise/protocol'
import { resolveModel } from '../runs/run-resolution.ts'
import type { ResolvedRunSpec } from '../runs/runs.ts'
import { renderModelCard } from './model-card.ts'
import type { ModelCardInput } from './model-card.ts'

const SHA = 'ab'.repeat(32)

function spec (overrides: Record<string, unknown> = {}): ResolvedRunSpec {
  const parsed = runSpecSchema.parse({ name: 'KJV demo', description: 'A small Llama.', model: { preset: 'small' }, rounds: 200, ...overrides })
  const model = resolveModel(parsed.model)
  return {
    ...parsed,
    modelConfig: model.config,
    paramCount: model.paramCount,
    trainShards: [{ sha256: 'c'.repeat(64), tokens: 3_000_000 }, { sha256: 'd'.repeat(64), tokens: 1_000_000 }],
    validationShard: { sha256: 'e'.repeat(64), tokens: 80_000 },
    vocabSize: 256,
    tokenizer: 'byte',
    documentIndex: null
  }
}

function input (overrides: Partial<ModelCardInput> = {}): ModelCardInput {
  return {
    run: { id: '1b4e28ba-2fa1-41d2-883f-0016d3cca427', name: 'KJV demo' },
    spec: spec(),
    checkpoint: { sha256: SHA, round: 12, tokensSeen: 300, valLoss: 2.3456789, weightsBytes: 812_345 },
    contributors: [
      { organization: 'Lab A', node: 'a-1', peerId: 'p1', tokens: 100, computeSeconds: 7200 },
      { organization: 'Lab B', node: 'b-1', peerId: 'p2', tokens: 150, computeSeconds: 30 },
      { organization: 'Lab A', node: 'a-2', peerId: 'p3', tokens: 50, computeSeconds: 3600 }
    ],
    folderName: 'kjv-demo-round-12',
    folderUrl: `/api/checkpoints/${SHA}/folder.tar`,
    datasetName: null,
    ...overrides
  }
}

/** The front matter's lines, checked to be the block YAML the Hub reads: a `---` fence, `key: value` or `key:` then indented items. */
function frontMatter (card: string): string[] {
  const m = /^---\n([\s\S]*?)\n---\n/.exec(card)
  assert.ok(m !== null, 'front matter fenced by ---')
  const lines = m[1]!.split('\n')
  for (const line of lines) assert.match(line, /^( *- )?( *[a-z_-]+:( .+)?| +- .+)$/, `a YAML line: ${line}`)
  return lines
}

test('front matter: licence, library, pipeline, tags, and the validation loss as a model-index metric', () => {
  const card = renderModelCard(input())
  const lines = frontMatter(card)
  assert.deepEqual(lines.slice(0, 4), ['license: apache-2.0', 'library_name: transformers', 'pipeline_tag: text-generation', 'tags:'])
  assert.ok(lines.includes('  - name: "KJV demo"'))
  assert.ok(lines.includes('          name: "King James Bible (held-out 2%)"'))
  assert.ok(lines.includes('            value: 2.345679'))
  const mit = frontMatter(renderModelCard(input({ spec: spec({ license: 'mit' }) })))
  assert.equal(mit[0], 'license: mit')
  const unmeasured = renderModelCard(input({ checkpoint: { ...input().checkpoint, valLoss: null } }))
  assert.ok(!frontMatter(unmeasured).includes('model-index:'), 'no metric until it is measured')
  assert.match(unmeasured, /Validation loss: Not measured yet/)
})

test('body: model, data, tokens, round, recipe, loss, how to load, checksum, licence', () => {
  const card = renderModelCard(input())
  assert.match(card, /^# KJV demo: round 12$/m)
  assert.match(card, /^A small Llama\.$/m)
  assert.match(card, /the checkpoint after round 12 of 200, having seen 300 training tokens/)
  assert.match(card, /\| Architecture \| `LlamaForCausalLM` \(the `small` preset\): 4 layers, hidden size 64, 4 attention heads \(2 key\/value\), MLP 172, RoPE θ \d+, tied embeddings \|/)
  assert.match(card, /\| Parameters \| [\d,]+ \|/)
  assert.match(card, /\| Context length \| 512 tokens \|/)
  assert.match(card, new RegExp(`\\| Weights \\| \`model.safetensors\`, float32, 793\\.3 KiB, sha256 \`${SHA}\``))
  assert.match(card, /\| Data \| The King James Bible \(public domain\).*4,000,000 training tokens in 2 shards; the last 2% \(80,000 tokens\) is held out/)
  assert.match(card, /\*\*2\.3457 nats per token\*\* \(3\.384 bits per byte\) on 4 × 8 fixed windows of 128 held-out tokens/)
  assert.match(card, /from_pretrained\("\.\/kjv-demo-round-12"\)/)
  assert.match(card, new RegExp(`/api/checkpoints/${SHA}/folder\\.tar`))
  assert.match(card, new RegExp(`\`sha256sum model.safetensors\` prints \`${SHA}\``))
  assert.match(card, /^`apache-2\.0`, as the run's organizer set it\.$/m)
  const tokenRun = renderModelCard(input({ spec: spec({ rounds: undefined, tokenTarget: 5_000_000 }) }))
  assert.match(tokenRun, /round 12 \(the run stops at 5,000,000 tokens\)/)
  const uploaded = renderModelCard(input({ spec: spec({ dataset: { source: 'shards', train: ['c'.repeat(64)], validation: 'e'.repeat(64) } }), datasetName: 'Poems' }))
  assert.match(uploaded, /\| Data \| Uploaded text “Poems”: 4,000,000 training tokens in 2 shards, with a held-out validation shard of 80,000 tokens/)
})

test('a tokenized dataset: the card names its tokenizer and how many documents this checkpoint trained on, with where to list them', () => {
  const tokenized = renderModelCard(input({ spec: { ...spec({ dataset: { source: 'dataset', id: '0b7e1a52-4f4a-4c1e-9a53-5d1c2f0e8a11' } }), tokenizer: 'gpt2-1k', vocabSize: 1025 }, datasetName: 'Verses', documents: { source: 'kjv.jsonl', heldOut: 620, trained: 1234 } }))
  assert.match(tokenized, /\| Data \| Dataset “Verses”: 4,000,000 training tokens in 2 shards, .* Read from `kjv\.jsonl`; 620 documents are held out for validation, and 1,234 documents were trained on up to this checkpoint: .*documents\.csv\?round=/)
  assert.match(tokenized, /\| Tokenizer \| `gpt2-1k` \(byte-level BPE\)/)
  assert.match(tokenized, /with a BPE tokenizer/)
  const uploadedTokenizer = renderModelCard(input({ spec: { ...spec(), tokenizer: `sha256:${'f'.repeat(64)}` } }))
  assert.match(uploadedTokenizer, /\| Tokenizer \| an uploaded `tokenizer\.json` \(sha256 `f{64}`\)/)
})

test('contributors: labs and nodes with their token shares, largest first', () => {
  const card = renderModelCard(input())
  const labRows = card.split('\n').filter((l) => /^\| Lab [AB] \|/.test(l))
  assert.deepEqual(labRows, ['| Lab A | 2 | 150 | 50.0% | 3.00 h |', '| Lab B | 1 | 150 | 50.0% | 30 s |'])
  const nodeRows = card.split('\n').filter((l) => /^\| [ab]-\d \|/.test(l))
  assert.deepEqual(nodeRows, ['| b-1 | Lab B | 150 | 50.0% |', '| a-1 | Lab A | 100 | 33.3% |', '| a-2 | Lab A | 50 | 16.7% |'])
  assert.match(card, /up to and including round 12, from the run's hash-chained ledger \(`\/api\/runs\/1b4e28ba-2fa1-41d2-883f-0016d3cca427\/ledger\.json`/)
  assert.match(renderModelCard(input({ contributors: [] })), /No contributions yet: this checkpoint holds the initial, untrained weights\./)
})

test('names from users cannot break the tables, inject markup or escape the YAML', () => {
  const hostile = 'Evil | <script>alert(1)</script>\n---\nlicense: mit [x](http://e.vil) *b*'
  const card = renderModelCard(input({
    run: { id: '1b4e28ba-2fa1-41d2-883f-0016d3cca427', name: hostile },
    contributors: [{ organization: hostile, node: 'n|1', peerId: 'p', tokens: 1, computeSeconds: 1 }]
  }))
  const lines = frontMatter(card)
  assert.equal(lines.filter((l) => l.startsWith('license:')).length, 1, 'one licence line')
  assert.ok(lines.includes(`  - name: ${JSON.stringify(hostile)}`))
  const body = card.slice(card.indexOf('\n---\n', 4) + 5)
  assert.ok(!body.includes('<script>'), 'no raw tags in the Markdown')
  assert.ok(!/\[x\]\(http/.test(body), 'no links')
  assert.match(card, /^\| n\\\|1 \| Evil \\\| \\<script\\>alert\(1\)\\<\/script\\> --- license: mit \\\[x\\\]\(http:\/\/e\.vil\) \\\*b\\\* \| 1 \| 100\.0% \|$/m)
})

test('a run created before runs named a licence says so', () => {
  const { license: _unset, ...older } = spec()
  const card = renderModelCard(input({ spec: older as ResolvedRunSpec }))
  assert.equal(frontMatter(card)[0], 'license: other')
  assert.match(card, /This run was created before runs named a licence; ask its organizer\./)
})
