// The README.md in every checkpoint folder: a Hugging Face model card (YAML front matter the Hub
// reads, then Markdown people read). It is generated from the run's rows each time it is served,
// so it always agrees with the ledger it summarizes.
import { parseLlamaConfig } from '@barnraise/protocol'
import type { StoredRunSpec } from '../runs/runs.ts'

/** One node's accepted work on a run up to a checkpoint's round. */
export interface CardContributor { organization: string, node: string, peerId: string, tokens: number, computeSeconds: number }

/** What a model card says, gathered from the run, the checkpoint row and the ledger. */
export interface ModelCardInput {
  run: { id: string, name: string }
  spec: StoredRunSpec
  checkpoint: { sha256: string, round: number, tokensSeen: number, valLoss: number | null, weightsBytes: number }
  /** Accepted ledger work up to and including the checkpoint's round. */
  contributors: CardContributor[]
  /** The folder's name when downloaded as one archive. */
  folderName: string
  /** Where the archive is on the coordinator (`…/folder.tar`). */
  folderUrl: string
  /** The name an uploaded dataset was given, when the run trains on uploaded text. */
  datasetName: string | null
  /** For datasets with a document index: the source file, documents held out, and documents trained up to this checkpoint. */
  documents?: { source: string, heldOut: number, trained: number } | null
}

/** Licence a run created before the spec had the field is described with. */
export const UNSET_LICENSE = 'other'

/** A YAML double-quoted scalar; JSON's string escapes are valid YAML. */
function yamlString (value: string): string {
  return JSON.stringify(value)
}

/** Text from users (names, descriptions) as inert Markdown: no tags, links, emphasis or table breaks. */
function inline (text: string): string {
  return text.replace(/\s+/g, ' ').trim().replace(/[\\`*_[\]<>|#]/g, (c) => `\\${c}`)
}

const count = (n: number): string => n.toLocaleString('en-US')
const shards = (n: number): string => n === 1 ? '1 shard' : `${count(n)} shards`
const percent = (part: number, whole: number): string => whole === 0 ? '—' : `${(100 * part / whole).toFixed(1)}%`

function bytes (n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let value = n / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++ }
  return `${value.toFixed(1)} ${units[unit]}`
}

function hours (seconds: number): string {
  return seconds < 36 ? `${seconds.toFixed(0)} s` : `${(seconds / 3600).toFixed(2)} h`
}

function datasetLine (input: ModelCardInput): { short: string, long: string } {
  const { spec } = input
  const trainTokens = spec.trainShards.reduce((n, s) => n + s.tokens, 0)
  if (spec.dataset.source === 'demo-corpus') {
    return {
      short: 'King James Bible (held-out 2%)',
      long: `The King James Bible (public domain), Barnraise's demo corpus: ${count(trainTokens)} training tokens in ${shards(spec.trainShards.length)}; the last 2% (${count(spec.validationShard.tokens)} tokens) is held out for validation.`
    }
  }
  if (spec.dataset.source === 'dataset') {
    const name = input.datasetName === null ? 'An uploaded dataset' : `Dataset “${inline(input.datasetName)}”`
    const docs = input.documents
    const record = docs === undefined || docs === null
      ? ''
      : ` Read from \`${inline(docs.source)}\`; ${count(docs.heldOut)} documents are held out for validation, and ${count(docs.trained)} documents were trained on up to this checkpoint: the coordinator lists them, with the rounds and nodes that trained each, at \`/api/runs/${input.run.id}/documents.csv?round=${input.checkpoint.round}\`.`
    return {
      short: input.datasetName === null ? 'uploaded dataset (held out)' : `${input.datasetName} (held out)`,
      long: `${name}: ${count(trainTokens)} training tokens in ${shards(spec.trainShards.length)}, with a held-out validation shard of ${count(spec.validationShard.tokens)} tokens.${record}`
    }
  }
  const name = input.datasetName === null ? 'uploaded text' : `uploaded text “${inline(input.datasetName)}”`
  return {
    short: input.datasetName === null ? 'uploaded text (held out)' : `${input.datasetName} (held out)`,
    long: `${capitalize(name)}: ${count(trainTokens)} training tokens in ${shards(spec.trainShards.length)}, with a held-out validation shard of ${count(spec.validationShard.tokens)} tokens (sha256 \`${spec.validationShard.sha256}\`).`
  }
}

/** The tokenizer row: bytes, a catalogue BPE, or an uploaded tokenizer.json named by its hash. */
function tokenizerLine (name: string, vocabSize: number): string {
  if (name === 'byte') return `bytes: one token per UTF-8 byte (vocabulary ${vocabSize}), no special tokens`
  const which = name.startsWith('sha256:') ? `an uploaded \`tokenizer.json\` (sha256 \`${name.slice(7)}\`)` : `\`${name}\` (byte-level BPE)`
  return `${which}, model vocabulary ${count(vocabSize)}; \`tokenizer.json\` in this folder, with \`<|endoftext|>\` (where the tokenizer has one) between documents`
}

function capitalize (text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}

function frontMatter (input: ModelCardInput, license: string, datasetShort: string): string[] {
  const lines = [
    '---',
    `license: ${license}`,
    'library_name: transformers',
    'pipeline_tag: text-generation',
    'tags:',
    '  - barnraise',
    '  - diloco',
    '  - llama',
    '  - byte-level'
  ]
  if (input.checkpoint.valLoss !== null) {
    lines.push(
      'model-index:',
      `  - name: ${yamlString(input.run.name)}`,
      '    results:',
      '      - task:',
      '          type: text-generation',
      '        dataset:',
      `          name: ${yamlString(datasetShort)}`,
      '          type: text',
      '        metrics:',
      '          - type: loss',
      '            name: validation loss (nats per token)',
      `            value: ${Number(input.checkpoint.valLoss.toFixed(6))}`
    )
  }
  lines.push('---')
  return lines
}

function contributorSection (input: ModelCardInput): string[] {
  const { contributors, checkpoint } = input
  if (contributors.length === 0) return ['No contributions yet: this checkpoint holds the initial, untrained weights.']
  const total = contributors.reduce((n, c) => n + c.tokens, 0)
  const labs = new Map<string, { name: string, tokens: number, computeSeconds: number, nodes: number }>()
  for (const c of contributors) {
    const lab = labs.get(c.organization) ?? { name: c.organization, tokens: 0, computeSeconds: 0, nodes: 0 }
    lab.tokens += c.tokens
    lab.computeSeconds += c.computeSeconds
    lab.nodes++
    labs.set(c.organization, lab)
  }
  const byTokens = (a: { tokens: number }, b: { tokens: number }): number => b.tokens - a.tokens
  return [
    `Tokens trained in accepted reports up to and including round ${checkpoint.round}, from the run's hash-chained ledger (\`/api/runs/${input.run.id}/ledger.json\` on the coordinator).`,
    '',
    '| Lab | Nodes | Tokens | Share | Compute time |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...[...labs.values()].sort(byTokens).map((lab) => `| ${inline(lab.name)} | ${lab.nodes} | ${count(lab.tokens)} | ${percent(lab.tokens, total)} | ${hours(lab.computeSeconds)} |`),
    '',
    '| Node | Lab | Tokens | Share |',
    '| --- | --- | ---: | ---: |',
    ...[...contributors].sort(byTokens).map((c) => `| ${inline(c.node)} | ${inline(c.organization)} | ${count(c.tokens)} | ${percent(c.tokens, total)} |`)
  ]
}

/** The model card for one checkpoint, as README.md text. */
export function renderModelCard (input: ModelCardInput): string {
  const { run, spec, checkpoint } = input
  const config = parseLlamaConfig(spec.modelConfig)
  const license = spec.license ?? UNSET_LICENSE
  const dataset = datasetLine(input)
  const r = spec.recipe
  const planned = spec.rounds !== undefined ? `round ${count(checkpoint.round)} of ${count(spec.rounds)}` : `round ${count(checkpoint.round)} (the run stops at ${count(spec.tokenTarget ?? 0)} tokens)`
  const preset = 'preset' in spec.model ? ` (the \`${inline(spec.model.preset)}\` preset)` : ''
  const heads = config.num_key_value_heads === config.num_attention_heads ? `${config.num_attention_heads} attention heads` : `${config.num_attention_heads} attention heads (${config.num_key_value_heads} key/value)`
  const loss = checkpoint.valLoss === null
    ? 'Not measured yet (the coordinator evaluates the initial checkpoint when the run starts).'
    : `**${checkpoint.valLoss.toFixed(4)} nats per token** (${(checkpoint.valLoss / Math.LN2).toFixed(3)} bits per byte) on ${spec.evalBatches} × ${r.batchSize} fixed windows of ${r.seqLen} held-out tokens. Lower is better; guessing bytes uniformly scores ln 256 = 5.545.`
  const lines = [
    ...frontMatter(input, license, dataset.short),
    '',
    `# ${inline(run.name)}: round ${checkpoint.round}`,
    '',
    ...(spec.description.trim() === '' ? [] : [inline(spec.description), '']),
    `A Llama-architecture causal language model with ${count(spec.paramCount)} parameters, pretrained from scratch on donated compute with Barnraise using DiLoCo: each round, every node trains its own copy for ${r.innerSteps} steps and the coordinator merges what they learned. This folder is the checkpoint after ${planned}, having seen ${count(checkpoint.tokensSeen)} training tokens.`,
    '',
    '## Model',
    '',
    '| | |',
    '| --- | --- |',
    `| Architecture | \`LlamaForCausalLM\`${preset}: ${config.num_hidden_layers} layers, hidden size ${config.hidden_size}, ${heads}, MLP ${config.intermediate_size}, RoPE θ ${config.rope_theta}, ${config.tie_word_embeddings ? 'tied' : 'untied'} embeddings |`,
    `| Parameters | ${count(spec.paramCount)} |`,
    `| Context length | ${count(config.max_position_embeddings)} tokens |`,
    `| Tokenizer | ${tokenizerLine(spec.tokenizer ?? 'byte', config.vocab_size)} |`,
    `| Weights | \`model.safetensors\`, float32, ${bytes(checkpoint.weightsBytes)}, sha256 \`${checkpoint.sha256}\` (the checkpoint's id) |`,
    '',
    '## Training',
    '',
    '| | |',
    '| --- | --- |',
    `| Data | ${dataset.long} |`,
    `| Tokens seen | ${count(checkpoint.tokensSeen)} |`,
    `| Round | ${planned} |`,
    `| Inner steps | ${r.innerSteps} AdamW steps per node per round, batch ${r.batchSize} × ${r.seqLen} tokens, learning rate ${r.innerLr} (warmup ${r.warmupSteps}, cosine decay), weight decay ${r.weightDecay}, β ${r.beta1}/${r.beta2}, gradient clip ${r.gradClip} |`,
    `| Outer step | Nesterov SGD on the token-weighted mean of the nodes' weight changes, learning rate ${r.outerLr}, momentum ${r.outerMomentum} |`,
    `| Pseudo-gradients | ${spec.codecs !== undefined && spec.codecs.length > 1 ? `sent as ${spec.codec}, or ${spec.codecs.filter((c) => c !== spec.codec).join(' or ')} from nodes whose upload was too slow for it` : `sent as ${spec.codec}`} |`,
    `| Seed | ${spec.seed} |`,
    `| Run | \`${run.id}\` |`,
    '',
    '## Evaluation',
    '',
    `Validation loss: ${loss}`,
    '',
    '## Contributors',
    '',
    ...contributorSection(input),
    '',
    '## How to use',
    '',
    `Download the folder as one file from the coordinator (\`${input.folderUrl}\`, which unpacks into \`${input.folderName}/\`), then:`,
    '',
    '```python',
    'from transformers import AutoModelForCausalLM, AutoTokenizer',
    '',
    `model = AutoModelForCausalLM.from_pretrained("./${input.folderName}")`,
    `tokenizer = AutoTokenizer.from_pretrained("./${input.folderName}")`,
    'ids = tokenizer("In the beginning", return_tensors="pt").input_ids',
    'print(tokenizer.decode(model.generate(ids, max_new_tokens=60, do_sample=True)[0]))',
    '```',
    '',
    `To check the weights are the ones this card describes, \`sha256sum model.safetensors\` prints \`${checkpoint.sha256}\`.`,
    '',
    '## Licence',
    '',
    spec.license === undefined
      ? 'This run was created before runs named a licence; ask its organizer.'
      : `\`${license}\`, as the run's organizer set it.`,
    '',
    '## Limitations',
    '',
    `A small research model trained on a single corpus with ${(spec.tokenizer ?? 'byte') === 'byte' ? 'a byte-level' : 'a BPE'} tokenizer. It is not instruction-tuned and has not been evaluated for safety or bias; it continues text in the style of its training data.`,
    ''
  ]
  return lines.join('\n')
}
