// A checkpoint as the Hugging Face folder people download: which files it has, how big each
// is, and where their bytes come from (generated text, or the weights blob streamed from the
// store). The HTTP downloads, the tar archive and the run page all read this one description.
import { sha256Hex } from '@barnraise/protocol'
import { sql } from 'kysely'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import { checkpointTextFiles } from './checkpoint-weights.ts'
import { loadTokenizer } from '../datasets/run-tokenizers.ts'
import { checkpointProvenance } from '../datasets/provenance.ts'
import type { StoredRunSpec } from '../runs/runs.ts'
import { retentionOf } from '../runs/checkpoint-retention.ts'
import { renderModelCard } from './model-card.ts'
import type { CardContributor } from './model-card.ts'
import { tarSize } from './tar-writer.ts'
import { StampedCache } from './stamped-cache.ts'
import type { TarEntry } from './tar-writer.ts'

/** The one-file download of a folder, beside its files. */
export const FOLDER_TAR = 'folder.tar'

export interface CheckpointFolderDeps {
  db: Kysely<Database>
  blobs: BlobStore
  /** Built folders kept between requests; without one every request rebuilds. */
  folderCache?: FolderCache
}

/** What a FolderCache may hold; each part is also capped by a count of entries. */
export interface FolderCacheLimits {
  /** Generated config and tokenizer files, one copy per tokenizer and model config, shared by every folder made with them. */
  textBytes: number
  /** Runs' rows, specs and dataset summaries. */
  runBytes: number
  /** Runs' accepted work per round and node, from the ledger. */
  workBytes: number
  /** Built folders, counting what is their own (the model card), not the shared text files. */
  folderBytes: number
}

const MiB = 1024 * 1024

/** The defaults: about 240 MiB at most, every part full. */
export const FOLDER_CACHE_LIMITS: FolderCacheLimits = { textBytes: 128 * MiB, runBytes: 16 * MiB, workBytes: 64 * MiB, folderBytes: 32 * MiB }

/**
 * Folders built for earlier requests, so a download, a 304 or a range request does not
 * re-aggregate the run's ledger, re-serialise its tokenizer and re-render the model card each
 * time. Text files are kept per tokenizer and model config; a run's row while it is unchanged;
 * its work while no ledger row is added (then only the new rows are read); a folder while all
 * it was built from is. Concurrent requests wait on one build. Each part has a byte budget.
 */
export class FolderCache {
  readonly texts: StampedCache<TextFiles>
  readonly runs: StampedCache<RunPart>
  readonly work: StampedCache<RunWork>
  readonly folders: StampedCache<CachedFolder>
  /** Folders built (model card rendered) so far: what the cache saves is visible in tests. */
  builds = 0
  /** Text file sets serialised so far. */
  textBuilds = 0
  /** Run parts (row, spec, dataset summary) read so far. */
  runBuilds = 0

  constructor (limits: Partial<FolderCacheLimits> = {}) {
    const l = { ...FOLDER_CACHE_LIMITS, ...limits }
    this.folders = new StampedCache<CachedFolder>({ entries: 8192, bytes: l.folderBytes, sizeOf: (f) => f.bytes })
    // A folder holds its text files: when their set goes, so do its folders, so the files are
    // never kept past the text budget.
    this.texts = new StampedCache<TextFiles>({ entries: 16, bytes: l.textBytes, sizeOf: (t) => t.bytes, onDrop: (t) => { this.folders.deleteWhere((f) => f.texts === t) } })
    this.runs = new StampedCache<RunPart>({ entries: 1024, bytes: l.runBytes, sizeOf: (r) => r.bytes })
    this.work = new StampedCache<RunWork>({ entries: 1024, bytes: l.workBytes, sizeOf: workBytes })
  }
}

/** A run's generated text files (config.json, tokenizer files) and what they weigh. */
interface TextFiles { key: string, files: Map<string, Uint8Array>, bytes: number }

/** A folder as cached: with the text set it shares, and what is its own. */
interface CachedFolder { folder: CheckpointFolder, texts: TextFiles, bytes: number }

/** `available`: downloadable; `pruned`: retention deleted the weights; `missing`: the weights blob vanished from the store. */
export type CheckpointStatus = 'available' | 'pruned' | 'missing'

/** One file of a checkpoint folder. */
export interface FolderFile {
  name: string
  size: number
  contentType: string
  /** Strong ETag; immutable files' tags never change for a checkpoint id. */
  etag: string
  /** True when the bytes can never change for this checkpoint id (everything but the model card). */
  immutable: boolean
  /** Generated files' bytes. */
  bytes?: Uint8Array
  /** The weights: the sha256 of the blob to stream. */
  blob?: string
}

/** A checkpoint of a run, with its folder's files (none once pruned). */
export interface CheckpointFolder {
  runId: string
  runName: string
  sha256: string
  round: number
  tokensSeen: number
  valLoss: number | null
  createdAt: Date
  prunedAt: Date | null
  latest: boolean
  status: CheckpointStatus
  /** The run's retention setting: round 0, every Nth round and the latest are kept. */
  keepEvery: number
  /** `<run-name>-round-<n>`: the folder the archive unpacks into. */
  folderName: string
  /**
   * Where the folder lives on the coordinator: `/api/checkpoints/<sha256>`, or
   * `/api/runs/<id>/checkpoints/<round>` where another run kept the same weights (runs with the
   * same model and seed share round 0), so this run's card and archive are the ones served.
   */
  address: string
  tarName: string
  files: FolderFile[]
  tarSize: number
  tarEtag: string
}

/** The run's name as a file-name part: lowercase ASCII letters, digits and dashes. */
export function fileSlug (name: string): string {
  const slug = name.normalize('NFKD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
    .replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 60).replace(/-+$/, '')
  return slug === '' ? 'checkpoint' : slug
}

const CONTENT_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.md': 'text/markdown; charset=utf-8',
  '.safetensors': 'application/octet-stream'
}

function contentType (name: string): string {
  return CONTENT_TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream'
}

const shortHash = (bytes: Uint8Array): string => sha256Hex(bytes).slice(0, 16)

interface CheckpointRow { sha256: string, run_id: string, round: number, tokens_seen: number, val_loss: number | null, created_at: Date, pruned_at: Date | null }

/** What every folder of one run shares besides its work: the run row, its spec, its dataset. */
interface RunPart {
  /** The run row's fields this was read from; a new ledger row leaves it as it is. */
  stamp: string
  id: string
  name: string
  spec: StoredRunSpec
  latest: string | null
  currentRound: number
  tokensSeen: number
  createdAt: Date
  /** The text set the folders use: everything the text files depend on (tokenizer and model config). */
  textKey: string
  datasetName: string | null
  /** For datasets with a document index: the file, documents held out, and for each round the documents trained up to it. */
  documents: { source: string, heldOut: number, firstRounds: ArrayLike<number> } | null
  /** What this costs toward the runs' budget. */
  bytes: number
}

/** Accepted ledger rows of one round, node and lab, summed. */
interface WorkEntry { round: number, peerId: string, nodeId: string | null, organizationId: string | null, tokens: number, computeSeconds: number }

/** A run's accepted work per round and node, counted from its ledger up to `seq`. */
interface RunWork {
  seq: number
  /** Changes whenever what a model card reads from this does (rows counted, node or lab names). */
  version: number
  /** In the order of each group's first ledger row, so cards list ties the same way every time. */
  entries: WorkEntry[]
  groups: Map<string, WorkEntry>
  nodeIds: Set<string>
  organizationIds: Set<string>
  nodeNames: Map<string, string>
  organizationNames: Map<string, string>
}

/** What the folders of one run are built from. */
interface RunContext { run: RunPart, work: RunWork }

/** What a run's work costs in memory, roughly: an entry with its group key, names. */
const workBytes = (w: RunWork): number => 1024 + 200 * w.entries.length + 100 * (w.nodeIds.size + w.organizationIds.size)

async function loadRun (deps: CheckpointFolderDeps, runId: string): Promise<RunContext | undefined> {
  const row = await deps.db.selectFrom('runs').select(['id', 'name', 'latest_checkpoint', 'current_round', 'tokens_seen', 'created_at', 'updated_at'])
    .select((eb) => eb.selectFrom('ledger').select((l) => l.fn.max('ledger.seq').as('s')).where('ledger.run_id', '=', runId).as('ledger_seq'))
    .where('id', '=', runId).executeTakeFirst()
  if (row === undefined) return undefined
  const stamp = [row.name, row.latest_checkpoint, row.current_round, row.tokens_seen, row.updated_at.getTime()].join('|')
  const seq = Number(row.ledger_seq ?? 0)
  const cache = deps.folderCache
  if (cache === undefined) return { run: await readRunPart(deps, row, stamp), work: await readWork(deps, runId, undefined, seq) }
  const [run, work] = await Promise.all([
    cache.runs.load(runId, stamp, async () => { cache.runBuilds++; return await readRunPart(deps, row, stamp) }),
    cache.work.load(runId, String(seq), async (previous) => await readWork(deps, runId, await previous, seq))
  ])
  return { run, work }
}

async function readRunPart (deps: CheckpointFolderDeps, run: { id: string, name: string, latest_checkpoint: string | null, current_round: number, tokens_seen: number, created_at: Date }, stamp: string): Promise<RunPart> {
  const runId = run.id
  const { spec } = await deps.db.selectFrom('runs').select('spec').where('id', '=', runId).executeTakeFirstOrThrow()
  let datasetName: string | null = null
  if (spec.dataset.source === 'shards') {
    const shard = await deps.db.selectFrom('blobs').select('meta').where('sha256', '=', spec.validationShard.sha256).executeTakeFirst()
    datasetName = typeof shard?.meta.dataset === 'string' ? shard.meta.dataset : null
  } else if (spec.dataset.source === 'dataset') {
    const row = await deps.db.selectFrom('datasets').select('name').where('id', '=', spec.dataset.id).executeTakeFirst()
    datasetName = row?.name ?? null
  }
  let documents: RunPart['documents'] = null
  if (spec.documentIndex !== undefined && spec.documentIndex !== null) {
    documents = (await checkpointProvenance(deps, runId)).summary
  }
  const specText = JSON.stringify(spec)
  return {
    stamp,
    id: run.id,
    name: run.name,
    spec,
    latest: run.latest_checkpoint,
    currentRound: run.current_round,
    tokensSeen: run.tokens_seen,
    createdAt: run.created_at,
    textKey: `${spec.tokenizer ?? 'byte'}\n${JSON.stringify(spec.modelConfig)}`,
    datasetName,
    documents,
    bytes: 1024 + 2 * specText.length + 8 * (documents?.firstRounds.length ?? 0)
  }
}

let workVersions = 0

/**
 * The run's accepted work up to ledger row `seq`: `previous` brought up to date with the rows
 * after it (a run's rows are only added, and commit in sequence order since appendLedgerEntry
 * locks the run), or the whole ledger summed when there is none. Names are read afresh each time.
 */
async function readWork (deps: CheckpointFolderDeps, runId: string, previous: RunWork | undefined, seq: number): Promise<RunWork> {
  if (previous !== undefined && previous.seq >= seq) return previous
  const rows = await deps.db.selectFrom('ledger')
    .select(['round', 'peer_id', 'node_id', 'organization_id'])
    .select((eb) => [eb.fn.sum<string>('tokens').as('tokens'), eb.fn.sum<number>('compute_seconds').as('compute_seconds'), eb.fn.min<number>('seq').as('first')])
    .where('run_id', '=', runId).where('outcome', '=', 'accepted').where('seq', '>', previous?.seq ?? 0).where('seq', '<=', seq)
    .groupBy(['round', 'peer_id', 'node_id', 'organization_id'])
    .orderBy('first')
    .execute()
  const nodeIds = new Set(previous?.nodeIds)
  const organizationIds = new Set(previous?.organizationIds)
  for (const r of rows) {
    if (r.node_id !== null) nodeIds.add(r.node_id)
    if (r.organization_id !== null) organizationIds.add(r.organization_id)
  }
  const nodes = nodeIds.size === 0 ? [] : await deps.db.selectFrom('nodes').select(['id', 'name']).where('id', 'in', [...nodeIds]).execute()
  const organizations = organizationIds.size === 0 ? [] : await deps.db.selectFrom('organizations').select(['id', 'name']).where('id', 'in', [...organizationIds]).execute()
  const nodeNames = new Map(nodes.map((n) => [n.id, n.name]))
  const organizationNames = new Map(organizations.map((o) => [o.id, o.name]))
  // Brought up to date in place: nothing else reads an older version once a newer one is cached.
  const work: RunWork = previous ?? { seq: 0, version: 0, entries: [], groups: new Map(), nodeIds, organizationIds, nodeNames, organizationNames }
  for (const r of rows) {
    const key = `${r.round}\0${r.peer_id}\0${r.node_id ?? ''}\0${r.organization_id ?? ''}`
    const entry = work.groups.get(key)
    if (entry !== undefined) {
      entry.tokens += Number(r.tokens)
      entry.computeSeconds += Number(r.compute_seconds)
      continue
    }
    const added: WorkEntry = { round: r.round, peerId: r.peer_id, nodeId: r.node_id, organizationId: r.organization_id, tokens: Number(r.tokens), computeSeconds: Number(r.compute_seconds) }
    work.entries.push(added)
    work.groups.set(key, added)
  }
  const renamed = !sameEntries(work.nodeNames, nodeNames) || !sameEntries(work.organizationNames, organizationNames)
  Object.assign(work, { seq, nodeIds, organizationIds, nodeNames, organizationNames })
  if (previous === undefined || rows.length > 0 || renamed) work.version = ++workVersions
  return work
}

function sameEntries (a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) if (b.get(k) !== v) return false
  return true
}

/** The run's config and tokenizer files: one copy per tokenizer and model config while cached. */
async function textFilesOf (deps: CheckpointFolderDeps, run: RunPart): Promise<TextFiles> {
  const cache = deps.folderCache
  if (cache === undefined) return await buildTextFiles(deps, run)
  return await cache.texts.load(run.textKey, '', async () => { cache.textBuilds++; return await buildTextFiles(deps, run) })
}

async function buildTextFiles (deps: CheckpointFolderDeps, run: RunPart): Promise<TextFiles> {
  const tokenizerName = run.spec.tokenizer ?? 'byte'
  const tokenizerFiles = tokenizerName === 'byte' ? undefined : (await loadTokenizer(deps, tokenizerName)).huggingFaceFiles(run.spec.modelConfig.max_position_embeddings)
  const files = checkpointTextFiles(run.spec.modelConfig, tokenizerFiles)
  let bytes = 0
  for (const f of files.values()) bytes += f.byteLength
  return { key: run.textKey, files, bytes }
}

/** How many of the sorted `firstRounds` are at most `round`. */
function countUpTo (firstRounds: ArrayLike<number>, round: number): number {
  let lo = 0
  let hi = firstRounds.length
  while (lo < hi) { const mid = (lo + hi) >>> 1; if (firstRounds[mid]! <= round) lo = mid + 1; else hi = mid }
  return lo
}

/** Each node's accepted work summed over rounds up to `round`. */
function contributorsUpTo (work: RunWork, round: number): CardContributor[] {
  const byPeer = new Map<string, CardContributor>()
  for (const w of work.entries) {
    if (w.round > round) continue
    let c = byPeer.get(w.peerId)
    if (c === undefined) {
      c = {
        organization: (w.organizationId === null ? undefined : work.organizationNames.get(w.organizationId)) ?? 'unknown lab',
        node: (w.nodeId === null ? undefined : work.nodeNames.get(w.nodeId)) ?? w.peerId.slice(-8),
        peerId: w.peerId,
        tokens: 0,
        computeSeconds: 0
      }
      byPeer.set(w.peerId, c)
    }
    c.tokens += w.tokens
    c.computeSeconds += w.computeSeconds
  }
  return [...byPeer.values()]
}

/** Weights sizes from the blobs table, falling back to the store itself. */
async function weightSizes (deps: CheckpointFolderDeps, shas: string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>()
  if (shas.length === 0) return sizes
  const rows = await deps.db.selectFrom('blobs').select(['sha256', 'size']).where('sha256', 'in', shas).execute()
  for (const r of rows) sizes.set(r.sha256, Number(r.size))
  for (const sha of shas) {
    if (sizes.has(sha)) continue
    const size = await deps.blobs.size(sha)
    if (size !== undefined) sizes.set(sha, size)
  }
  return sizes
}

/** Of these weights, those more than one run's checkpoint row names. */
async function sharedWeights (deps: CheckpointFolderDeps, shas: string[]): Promise<Set<string>> {
  if (shas.length === 0) return new Set()
  const rows = await deps.db.selectFrom('checkpoints').select('sha256').where('sha256', 'in', [...new Set(shas)])
    .groupBy('sha256').having((eb) => eb.fn.count('run_id').distinct(), '>', 1).execute()
  return new Set(rows.map((r) => r.sha256))
}

/** The folder of `row`, from the cache when nothing it is built from changed since it was built. */
function folderOf (deps: CheckpointFolderDeps, ctx: RunContext, texts: TextFiles, row: CheckpointRow, weightsBytes: number | undefined, shared: boolean): CheckpointFolder {
  const cache = deps.folderCache
  if (cache === undefined) return buildFolder(ctx, texts, row, weightsBytes, shared)
  const key = `${ctx.run.id}:${row.round}`
  const stamp = [ctx.run.stamp, ctx.work.version, row.sha256, row.tokens_seen, row.val_loss, row.created_at.getTime(), row.pruned_at?.getTime() ?? '', weightsBytes ?? '', shared].join('|')
  const cached = cache.folders.get(key, stamp)
  if (cached?.texts === texts) return cached.folder
  const folder = buildFolder(ctx, texts, row, weightsBytes, shared)
  cache.builds++
  // Kept only while its text set is: dropping the set drops its folders, so no folder holds
  // files the text budget no longer counts.
  if (cache.texts.get(texts.key, '') === texts) {
    let own = 1024
    for (const f of folder.files) own += 256 + (f.name === 'README.md' ? f.size : 0)
    cache.folders.set(key, stamp, { folder, texts, bytes: own })
  } else {
    cache.folders.delete(key)
  }
  return folder
}

function buildFolder ({ run, work }: RunContext, texts: TextFiles, row: CheckpointRow, weightsBytes: number | undefined, shared: boolean): CheckpointFolder {
  const folderName = `${fileSlug(run.name)}-round-${row.round}`
  const address = shared ? `/api/runs/${run.id}/checkpoints/${row.round}` : `/api/checkpoints/${row.sha256}`
  const status: CheckpointStatus = row.pruned_at !== null ? 'pruned' : weightsBytes === undefined ? 'missing' : 'available'
  const files: FolderFile[] = []
  let cardHash = 'none'
  if (status === 'available') {
    const card = new TextEncoder().encode(renderModelCard({
      run: { id: run.id, name: run.name },
      spec: run.spec,
      checkpoint: { sha256: row.sha256, round: row.round, tokensSeen: row.tokens_seen, valLoss: row.val_loss, weightsBytes: weightsBytes! },
      contributors: contributorsUpTo(work, row.round),
      folderName,
      folderUrl: `${address}/${FOLDER_TAR}`,
      datasetName: run.datasetName,
      documents: run.documents === null ? null : { source: run.documents.source, heldOut: run.documents.heldOut, trained: countUpTo(run.documents.firstRounds, row.round) }
    }))
    // The card is regenerated on every request (the initial checkpoint's loss arrives later),
    // so its tag is its content's hash; the other files are fixed by the checkpoint id.
    cardHash = shortHash(card)
    files.push({ name: 'README.md', size: card.byteLength, contentType: contentType('README.md'), etag: `"${row.sha256}-README.md-${cardHash}"`, immutable: false, bytes: card })
    for (const [name, bytes] of texts.files) {
      files.push({ name, size: bytes.byteLength, contentType: contentType(name), etag: `"${row.sha256}-${name}"`, immutable: true, bytes })
      if (name === 'config.json') {
        files.push({ name: 'model.safetensors', size: weightsBytes!, contentType: contentType('model.safetensors'), etag: `"${row.sha256}-model.safetensors"`, immutable: true, blob: row.sha256 })
      }
    }
  }
  return {
    runId: run.id,
    runName: run.name,
    sha256: row.sha256,
    round: row.round,
    tokensSeen: row.tokens_seen,
    valLoss: row.val_loss,
    createdAt: row.created_at,
    prunedAt: row.pruned_at,
    latest: row.sha256 === run.latest,
    status,
    keepEvery: retentionOf(run.spec).keepEvery,
    folderName,
    address,
    tarName: `${folderName}.tar`,
    files,
    tarSize: files.length === 0 ? 0 : tarSize([{ type: 'directory' }, ...files.map((f) => ({ type: 'file' as const, size: f.size }))]),
    tarEtag: `"${row.sha256}-folder.tar-${cardHash}"`
  }
}

/** The archive's members: the folder, then its files, the weights streamed from `readBlob`. */
export function tarEntries (files: FolderFile[], folderName: string, mtime: Date, readBlob: (sha: string) => AsyncIterable<Uint8Array>): TarEntry[] {
  return [
    { type: 'directory', name: folderName, mtime },
    ...files.map((f): TarEntry => ({
      type: 'file',
      name: `${folderName}/${f.name}`,
      mtime,
      size: f.size,
      read: f.blob !== undefined ? () => readBlob(f.blob!) : async function * () { yield f.bytes! }
    }))
  ]
}

/**
 * The most checkpoints one listing builds: each available one renders its model card, and the
 * listings are public, so a long run's are read a page at a time.
 */
export const CHECKPOINT_PAGE_MAX = 500

/** Which of a run's checkpoints a listing wants: those after a round, oldest first, or the newest. */
export type CheckpointPage = { order: 'oldest', after: number, limit: number } | { order: 'newest', limit: number }

/** A page of a run's checkpoints, oldest first, and whether the run has more past it. */
export interface CheckpointFolderPage { folders: CheckpointFolder[], more: boolean }

/** A page of a run's checkpoints (at most CHECKPOINT_PAGE_MAX); undefined when there is no such run. */
export async function runCheckpointFolders (deps: CheckpointFolderDeps, runId: string, page: CheckpointPage = { order: 'oldest', after: -1, limit: CHECKPOINT_PAGE_MAX }): Promise<CheckpointFolderPage | undefined> {
  const run = await loadRun(deps, runId)
  if (run === undefined) return undefined
  const limit = Math.max(1, Math.min(CHECKPOINT_PAGE_MAX, Math.floor(page.limit)))
  let query = deps.db.selectFrom('checkpoints').selectAll().where('run_id', '=', runId)
  query = page.order === 'oldest' ? query.where('round', '>', page.after).orderBy('round') : query.orderBy('round', 'desc')
  // One more than the page, to tell whether there are more.
  const fetched = await query.limit(limit + 1).execute()
  const rows = fetched.slice(0, limit)
  if (page.order === 'newest') rows.reverse()
  const sizes = await weightSizes(deps, rows.filter((r) => r.pruned_at === null).map((r) => r.sha256))
  const shared = await sharedWeights(deps, rows.map((r) => r.sha256))
  const texts = await textFilesOf(deps, run.run)
  return { folders: rows.map((r) => folderOf(deps, run, texts, r, sizes.get(r.sha256), shared.has(r.sha256))), more: fetched.length > limit }
}

/** A run's checkpoint of one round; undefined when the run has none (or there is no such run). */
export async function roundCheckpointFolder (deps: CheckpointFolderDeps, runId: string, round: number): Promise<CheckpointFolder | undefined> {
  const run = await loadRun(deps, runId)
  if (run === undefined) return undefined
  const row = await deps.db.selectFrom('checkpoints').selectAll().where('run_id', '=', runId).where('round', '=', round).executeTakeFirst()
  if (row === undefined) return undefined
  return await oneFolder(deps, run, row)
}

/** One row's folder: its weights' size and whether other runs share them, looked up for it alone. */
async function oneFolder (deps: CheckpointFolderDeps, run: RunContext, row: CheckpointRow): Promise<CheckpointFolder> {
  const sizes = await weightSizes(deps, row.pruned_at === null ? [row.sha256] : [])
  const shared = await sharedWeights(deps, [row.sha256])
  const texts = await textFilesOf(deps, run.run)
  return folderOf(deps, run, texts, row, sizes.get(row.sha256), shared.has(row.sha256))
}

/** The checkpoint whose weights have this sha256; undefined when unknown. */
export async function checkpointFolder (deps: CheckpointFolderDeps, sha256: string): Promise<CheckpointFolder | undefined> {
  // Runs with the same model and seed share their round-0 weights: the address names the
  // weights, so it answers with the first run that kept them.
  const row = await deps.db.selectFrom('checkpoints').selectAll().where('sha256', '=', sha256)
    .orderBy(sql`pruned_at is not null`).orderBy('created_at').orderBy('run_id').limit(1).executeTakeFirst()
  if (row === undefined) return undefined
  const run = await loadRun(deps, row.run_id)
  if (run === undefined) return undefined
  return await oneFolder(deps, run, row)
}

/** A run's newest checkpoint (the base of its next round); undefined when there is no such run. */
export async function latestCheckpointFolder (deps: CheckpointFolderDeps, runId: string): Promise<CheckpointFolder | undefined> {
  const ctx = await loadRun(deps, runId)
  if (ctx === undefined || ctx.run.latest === null) return undefined
  const { run } = ctx
  const latest = ctx.run.latest
  const own = await deps.db.selectFrom('checkpoints').selectAll().where('sha256', '=', latest).where('run_id', '=', runId)
    .orderBy('round', 'desc').limit(1).executeTakeFirst()
  // Every run has a row for its latest checkpoint; the stand-in covers a run created before
  // migration 2026-12-09-0001 whose round 0 could not be recovered.
  const row: CheckpointRow = own ?? { sha256: latest, run_id: runId, round: run.currentRound, tokens_seen: run.tokensSeen, val_loss: null, created_at: run.createdAt, pruned_at: null }
  return await oneFolder(deps, ctx, row)
}

/** A checkpoint as the HTTP API and the dashboard list it: files with sizes and download paths. */
export function checkpointSummary (f: CheckpointFolder) {
  const base = f.address
  return {
    round: f.round,
    tokensSeen: f.tokensSeen,
    valLoss: f.valLoss,
    sha256: f.sha256,
    createdAt: f.createdAt.toISOString(),
    status: f.status,
    prunedAt: f.prunedAt?.toISOString() ?? null,
    latest: f.latest,
    folderName: f.folderName,
    url: `${base}/`,
    files: f.files.map((file) => ({ name: file.name, size: file.size, url: `${base}/${file.name}` })),
    tar: f.status === 'available' ? { name: f.tarName, size: f.tarSize, url: `${base}/${FOLDER_TAR}` } : null
  }
}

export type CheckpointSummary = ReturnType<typeof checkpointSummary>
