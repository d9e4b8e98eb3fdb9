import { runSpecSchema } from '@barnraise/protocol/run-spec'
import type { RunSpec, RunSpecInput } from '@barnraise/protocol/run-spec'
import type { FieldError } from './errors.ts'

/*
 * The launch form's state and how it becomes a run spec. Every check is the server's own
 * schema (`runSpecSchema` from @barnraise/protocol/run-spec), run in the browser, so the
 * form and `runs.create` agree on what is valid; zod's generic wording is made friendlier.
 */

/** The spec's defaults, straight from the schema (a name and a stop condition are the only required fields). */
export const SPEC_DEFAULTS = runSpecSchema.parse({ name: 'defaults', rounds: 100 })

export const RECIPE_FIELDS = [
  { key: 'innerSteps', label: 'Inner steps (H)', hint: 'AdamW steps each node takes per round', step: '1' },
  { key: 'batchSize', label: 'Batch size', hint: 'sequences per step', step: '1' },
  { key: 'seqLen', label: 'Sequence length', hint: 'tokens per sequence', step: '1' },
  { key: 'innerLr', label: 'Inner learning rate', hint: 'peak AdamW rate', step: 'any' },
  { key: 'warmupSteps', label: 'Warmup steps', hint: 'linear warmup, then cosine decay', step: '1' }
] as const

export const ADVANCED_RECIPE_FIELDS = [
  { key: 'weightDecay', label: 'Weight decay', hint: 'AdamW, decoupled', step: 'any' },
  { key: 'beta1', label: 'β₁', hint: 'AdamW first moment', step: 'any' },
  { key: 'beta2', label: 'β₂', hint: 'AdamW second moment', step: 'any' },
  { key: 'gradClip', label: 'Gradient clip', hint: 'global norm', step: 'any' },
  { key: 'outerLr', label: 'Outer learning rate', hint: 'DiLoCo’s Nesterov step', step: 'any' },
  { key: 'outerMomentum', label: 'Outer momentum', hint: 'Nesterov momentum', step: 'any' },
  { key: 'errorFeedbackDecay', label: 'Error-feedback decay', hint: 'topk: the share of what a node’s last reports left out that rides along its next one (1: all of it)', step: 'any' }
] as const

export type RecipeKey = typeof RECIPE_FIELDS[number]['key'] | typeof ADVANCED_RECIPE_FIELDS[number]['key']

export type CodecChoice = RunSpec['codec']

/** Every codec, largest report first: a slow link may only be moved down this list. */
export const CODECS_BY_SIZE = ['fp32', 'fp16', 'int8', 'topk'] as const satisfies readonly CodecChoice[]

/** The codecs whose reports are smaller than `codec`'s, largest first: what a slow link may be given instead. */
export function smallerCodecs (codec: CodecChoice): CodecChoice[] {
  return CODECS_BY_SIZE.slice(CODECS_BY_SIZE.indexOf(codec) + 1)
}

export interface SpecForm {
  name: string
  description: string
  preset: string
  datasetSource: 'demo-corpus' | 'upload' | 'file'
  recipe: Record<RecipeKey, string>
  codec: CodecChoice
  /** smaller codecs the coordinator may give a node whose link would hold the round (spec `codecs`, beside `codec`) */
  slowLinkCodecs: CodecChoice[]
  stopBy: 'rounds' | 'tokens'
  rounds: string
  tokenTarget: string
  minNodes: string
  maxNodes: string
  roundDeadlineSeconds: string
  evalBatches: string
  seed: string
  computeGoalGpuHours: string
  fundingGoalUsd: string
  keepEvery: string
  license: string
  aggregation: 'mean' | 'trimmed-mean' | 'median' | 'centered-clip'
  screening: boolean
  /** percent of each round's units also handed to a second node (redundancy checks) */
  redundancyPercent: string
  overlap: 'none' | 'delayed'
  broadcast: RunSpec['broadcast']
  unitSizing: 'fixed' | 'throughput'
}

export interface UploadedDataset { name: string, train: string[], validation: string, trainTokens: number, validationTokens: number }

/** A dataset file uploaded and tokenized on the coordinator (datasets.create, then its pieces). */
/**
 * An uploaded dataset a run can be launched on: tokenized, or uploaded and still tokenizing (the
 * run then waits for it, and its token counts are what was counted so far).
 */
export interface TokenizedDataset { id: string, name: string, tokenizer: string, vocabSize: number, trainTokens: number, validationTokens: number, documents: number, status: 'tokenizing' | 'ready' }

export function initialForm (): SpecForm {
  const d = SPEC_DEFAULTS
  const recipe = Object.fromEntries(Object.entries(d.recipe).map(([k, v]) => [k, String(v)])) as Record<RecipeKey, string>
  return {
    name: '',
    description: '',
    preset: 'preset' in d.model ? d.model.preset : 'small',
    datasetSource: 'demo-corpus',
    recipe,
    codec: d.codec,
    slowLinkCodecs: [],
    stopBy: 'rounds',
    rounds: '100',
    tokenTarget: '',
    minNodes: String(d.minNodes),
    maxNodes: String(d.maxNodes),
    roundDeadlineSeconds: String(d.roundDeadlineSeconds),
    evalBatches: String(d.evalBatches),
    seed: String(d.seed),
    computeGoalGpuHours: '',
    fundingGoalUsd: '',
    keepEvery: String(d.retention.keepEvery),
    license: d.license,
    aggregation: d.defences.aggregation,
    screening: d.defences.screening,
    redundancyPercent: String(d.defences.redundancy * 100),
    overlap: d.overlap,
    broadcast: d.broadcast,
    unitSizing: d.unitSizing
  }
}

/**
 * The form after choosing the run's codec: ticked slow-link codecs that are no longer smaller
 * are dropped, so the spec never lists a codec a slow link could not be moved down to.
 */
export function withCodec (form: SpecForm, codec: CodecChoice): SpecForm {
  const smaller = smallerCodecs(codec)
  return { ...form, codec, slowLinkCodecs: form.slowLinkCodecs.filter((c) => smaller.includes(c)) }
}

/** The form with one slow-link codec ticked or unticked, kept in size order. */
export function withSlowLinkCodec (form: SpecForm, codec: CodecChoice, on: boolean): SpecForm {
  const ticked = new Set(form.slowLinkCodecs)
  if (on) ticked.add(codec)
  else ticked.delete(codec)
  return { ...form, slowLinkCodecs: CODECS_BY_SIZE.filter((c) => ticked.has(c)) }
}

/** A required number: blank is NaN, so the schema says "enter a number" instead of quietly using a default. */
function required (text: string): number {
  return text.trim() === '' ? Number.NaN : Number(text)
}

function optional (text: string): number | undefined {
  return text.trim() === '' ? undefined : Number(text)
}

/** The spec the form describes (not yet validated). */
export function buildSpec (form: SpecForm, upload: UploadedDataset | null, tokenized: TokenizedDataset | null = null): RunSpecInput {
  const recipe = Object.fromEntries(Object.entries(form.recipe).map(([k, v]) => [k, required(v)])) as RunSpecInput['recipe']
  const dataset: RunSpecInput['dataset'] = form.datasetSource === 'upload' && upload !== null
    ? { source: 'shards', train: upload.train, validation: upload.validation }
    : form.datasetSource === 'file' && tokenized !== null
      ? { source: 'dataset', id: tokenized.id }
      : { source: 'demo-corpus' }
  const spec: RunSpecInput = {
    name: form.name,
    description: form.description,
    model: { preset: form.preset },
    dataset,
    recipe,
    codec: form.codec,
    minNodes: required(form.minNodes),
    maxNodes: required(form.maxNodes),
    roundDeadlineSeconds: required(form.roundDeadlineSeconds),
    evalBatches: required(form.evalBatches),
    seed: required(form.seed),
    retention: { keepEvery: required(form.keepEvery) },
    license: form.license,
    defences: { aggregation: form.aggregation, screening: form.screening, redundancy: required(form.redundancyPercent) / 100 },
    overlap: form.overlap,
    broadcast: form.broadcast,
    unitSizing: form.unitSizing
  }
  // Absent unless a smaller codec is ticked: a run with `codecs` of one is the same run, written longer.
  if (form.slowLinkCodecs.length > 0) spec.codecs = [form.codec, ...form.slowLinkCodecs]
  if (form.stopBy === 'rounds') spec.rounds = required(form.rounds)
  else spec.tokenTarget = required(form.tokenTarget)
  const compute = optional(form.computeGoalGpuHours)
  const funding = optional(form.fundingGoalUsd)
  if (compute !== undefined) spec.computeGoalGpuHours = compute
  if (funding !== undefined) spec.fundingGoalUsd = funding
  return spec
}

interface LooseIssue { code: string, path: PropertyKey[], message: string, minimum?: number | bigint, maximum?: number | bigint, inclusive?: boolean, expected?: string }

/** zod's generic messages ("Too small: expected number to be >=1") in plain words. */
function friendly (issue: LooseIssue): string {
  const generic = /^(Too small|Too big|Invalid input|Invalid option|Unrecognized key)/.test(issue.message)
  if (!generic) return issue.message
  if (issue.code === 'invalid_type') return issue.expected === 'int' ? 'enter a whole number' : 'enter a number'
  if (issue.code === 'too_small') return issue.inclusive === false ? `must be more than ${String(issue.minimum)}` : `must be at least ${String(issue.minimum)}`
  if (issue.code === 'too_big') return issue.inclusive === false ? `must be less than ${String(issue.maximum)}` : `must be at most ${String(issue.maximum)}`
  return issue.message
}

/** The form field an error path belongs to: one entry of `codecs` (`codecs.1`) is the slow-link checkboxes' whole. */
export function formField (path: string): string {
  return path.startsWith('codecs.') ? 'codecs' : path
}

/** Field path → message, using the same schema the server uses. */
export function validateSpec (spec: RunSpecInput): Map<string, string> {
  const errors = new Map<string, string>()
  const result = runSpecSchema.safeParse(spec)
  if (result.success) return errors
  for (const issue of result.error.issues as unknown as LooseIssue[]) {
    let field = formField(issue.path.map(String).join('.') || '(spec)')
    let message = friendly(issue)
    // "say when to stop" belongs to whichever stop condition the form shows.
    if (field === 'rounds' && spec.rounds === undefined && spec.tokenTarget !== undefined) field = 'tokenTarget'
    // topk ticked for slow links clashes with doubled units: the schema's "use int8" would read
    // as "change the run's codec", so the form says it where the tick was made.
    if (field === 'defences.redundancy' && issue.code === 'custom' && spec.codec !== 'topk' && (spec.codecs ?? []).includes('topk')) {
      field = 'codecs'
      message = 'doubled units cannot check topk reports (each node adds its own error feedback); untick topk or set doubled units to 0'
    }
    if (!errors.has(field)) errors.set(field, message)
  }
  return errors
}

/** The server's `data.fields` in the same shape. */
export function fieldErrorMap (fields: FieldError[]): Map<string, string> {
  const errors = new Map<string, string>()
  for (const f of fields) {
    const field = formField(f.field)
    if (!errors.has(field)) errors.set(field, f.message)
  }
  return errors
}

/** The form's field ids, `recipe.seqLen` → `f-recipe-seqLen`. */
export function fieldId (path: string): string {
  return `f-${path.replace(/\./g, '-')}`
}

/**
 * A word of warning for an overlapped run whose outer step is DiLoCo's long-run default or
 * larger: a one-step-delayed outer update with a high lr or momentum lost most of what DiLoCo
 * gained in `pnpm bench comm` (docs/overlap.md); null when there is nothing to say.
 */
export function overlapWarning (form: Pick<SpecForm, 'overlap' | 'recipe'>): string | null {
  if (form.overlap !== 'delayed') return null
  const lr = Number(form.recipe.outerLr)
  const momentum = Number(form.recipe.outerMomentum)
  if (!(lr > 0.5 || momentum > 0)) return null
  return `Overlapped rounds apply each outer step one round late; with outer lr ${form.recipe.outerLr} and momentum ${form.recipe.outerMomentum} that cost much of DiLoCo's gain in our measurements. Short runs did best with lr 0.5 and no momentum (docs/overlap.md).`
}
