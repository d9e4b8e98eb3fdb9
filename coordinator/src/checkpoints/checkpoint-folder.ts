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

/**
 * Folders built for earlier requests, so a download, a 304 or a range request does not
 * re-aggregate the run's ledger and re-render the model card each time. A run's entry is
 * valid while its row and its newest ledger row are unchanged; a folder's while its run's
 * entry and its checkpoint row are.
 */
export class FolderCache {
  readonly runs = new StampedCache<RunContext>(64)
  readonly folders = new StampedCache<CheckpointFolder>(512)
  /** Folders built (model card rendered) so far: what the cache saves is visible in tests. */
  builds = 0
}

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

/** What every folder of one run shares: the run, its generated config files, its ledger totals. */
interface RunContext {
  /** Changes whenever anything below may have: the run row's fields and its newest ledger row. */
  stamp: string
  id: string
  name: string
  spec: StoredRunSpec
  latest: string | null
  currentRound: number
  tokensSeen: number
  createdAt: Date
  textFiles: Map<string, Uint8Array>
  datasetName: string | null
  /** For datasets with a document index: the file, documents held out, and for each round the documents trained up to it. */
  documents: { source: string, heldOut: number, firstRounds: ArrayLike<number> } | null
  /** Accepted work per round and node. */
  work: Array<{ round: number, contributor: CardContributor }>
}

async function loadRun (deps: CheckpointFolderDeps, runId: string): Promise<RunContext | undefined> {
  const run = await deps.db.selectFrom('runs').select(['id', 'name', 'latest_checkpoint', 'current_round', 'tokens_seen', 'created_at', 'updated_at'])
    .select((eb) => eb.selectFrom('ledger').select((l) => l.fn.max('ledger.seq').as('s')).where('ledger.run_id', '=', runId).as('ledger_seq'))
    .where('id', '=', runId).executeTakeFirst()
  if (run === undefined) return undefined
  const stamp = [run.name, run.latest_checkpoint, run.current_round, run.tokens_seen, run.updated_at.getTime(), run.ledger_seq ?? 0].join('|')
  const cached = deps.folderCache?.runs.get(runId, stamp)
  if (cached !== undefined) return cached
  const context = await buildRunContext(deps, { ...run, stamp })
  deps.folderCache?.runs.set(runId, stamp, context)
  return context
}

async function buildRunContext (deps: CheckpointFolderDeps, run: { id: string, name: string, latest_checkpoint: string | null, current_round: number, tokens_seen: number, created_at: Date, stamp: string }): Promise<RunContext> {
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
  const tokenizerName = spec.tokenizer ?? 'byte'
  const tokenizerFiles = tokenizerName === 'byte' ? undefined : (await loadTokenizer(deps, tokenizerName)).huggingFaceFiles(spec.modelConfig.max_position_embeddings)
  let documents: RunContext['documents'] = null
  if (spec.documentIndex !== undefined && spec.documentIndex !== null) {
    documents = (await checkpointProvenance(deps, runId)).summary
  }
  const rows = await deps.db.selectFrom('ledger')
    .leftJoin('nodes', 'nodes.id', 'ledger.node_id')
    .leftJoin('organizations', 'organizations.id', 'ledger.organization_id')
    .select(['ledger.round', 'ledger.peer_id', 'nodes.name as node_name', 'organizations.name as organization_name'])
    .select((eb) => [eb.fn.sum<string>('ledger.tokens').as('tokens'), eb.fn.sum<number>('ledger.compute_seconds').as('compute_seconds')])
    .where('ledger.run_id', '=', runId).where('ledger.outcome', '=', 'accepted')
    .groupBy(['ledger.round', 'ledger.peer_id', 'nodes.name', 'organizations.name'])
    .execute()
  return {
    stamp: run.stamp,
    id: run.id,
    name: run.name,
    spec,
    latest: run.latest_checkpoint,
    currentRound: run.current_round,
    tokensSeen: run.tokens_seen,
    createdAt: run.created_at,
    textFiles: checkpointTextFiles(spec.modelConfig, tokenizerFiles),
    datasetName,
    documents,
    work: rows.map((r) => ({
      round: r.round,
      contributor: {
        organization: r.organization_name ?? 'unknown lab',
        node: r.node_name ?? r.peer_id.slice(-8),
        peerId: r.peer_id,
        tokens: Number(r.tokens),
        computeSeconds: Number(r.compute_seconds)
      }
    }))
  }
}

/** How many of the sorted `firstRounds` are at most `round`. */
function countUpTo (firstRounds: ArrayLike<number>, round: number): number {
  let lo = 0
  let hi = firstRounds.length
  while (lo < hi) { const mid = (lo + hi) >>> 1; if (firstRounds[mid]! <= round) lo = mid + 1; else hi = mid }
  return lo
}

/** Each node's accepted work summed over rounds up to `round`. */
function contributorsUpTo (run: RunContext, round: number): CardContributor[] {
  const byPeer = new Map<string, CardContributor>()
  for (const w of run.work) {
    if (w.round > round) continue
    const c = byPeer.get(w.contributor.peerId) ?? { ...w.contributor, tokens: 0, computeSeconds: 0 }
    c.tokens += w.contributor.tokens
    c.computeSeconds += w.contributor.computeSeconds
    byPeer.set(c.peerId, c)
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

/** The folder of `row`, from the cache when neither the run nor the row changed since it was built. */
function folderOf (deps: CheckpointFolderDeps, run: RunContext, row: CheckpointRow, weightsBytes: number | undefined, shared: boolean): CheckpointFolder {
  const cache = deps.folderCache
  if (cache === undefined) return buildFolder(run, row, weightsBytes, shared)
  const key = `${run.id}:${row.round}`
  const stamp = [run.stamp, row.sha256, row.tokens_seen, row.val_loss, row.created_at.getTime(), row.pruned_at?.getTime() ?? '', weightsBytes ?? '', shared].join('|')
  const cached = cache.folders.get(key, stamp)
  if (cached !== undefined) return cached
  const folder = buildFolder(run, row, weightsBytes, shared)
  cache.builds++
  cache.folders.set(key, stamp, folder)
  return folder
}

function buildFolder (run: RunContext, row: CheckpointRow, weightsBytes: number | undefined, shared: boolean): CheckpointFolder {
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
      contributors: contributorsUpTo(run, row.round),
      folderName,
      folderUrl: `${address}/${FOLDER_TAR}`,
      datasetName: run.datasetName,
      documents: run.documents === null ? null : { source: run.documents.source, heldOut: run.documents.heldOut, trained: countUpTo(run.documents.firstRounds, row.round) }
    }))
    // The card is regenerated on every request (the initial checkpoint's loss arrives later),
    // so its tag is its content's hash; the other files are fixed by the checkpoint id.
    cardHash = shortHash(card)
    files.push({ name: 'README.md', size: card.byteLength, contentType: contentType('README.md'), etag: `"${row.sha256}-README.md-${cardHash}"`, immutable: false, bytes: card })
    for (const [name, bytes] of run.textFiles) {
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
  return { folders: rows.map((r) => folderOf(deps, run, r, sizes.get(r.sha256), shared.has(r.sha256))), more: fetched.length > limit }
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
  return folderOf(deps, run, row, sizes.get(row.sha256), shared.has(row.sha256))
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
  const run = await loadRun(deps, runId)
  if (run?.latest === null || run === undefined) return undefined
  const latest = run.latest
  const own = await deps.db.selectFrom('checkpoints').selectAll().where('sha256', '=', latest).where('run_id', '=', runId)
    .orderBy('round', 'desc').limit(1).executeTakeFirst()
  // Every run has a row for its latest checkpoint; the stand-in covers a run created before
  // migration 2026-12-09-0001 whose round 0 could not be recovered.
  const row: CheckpointRow = own ?? { sha256: latest, run_id: runId, round: run.currentRound, tokens_seen: run.tokensSeen, val_loss: null, created_at: run.createdAt, pruned_at: null }
  return await oneFolder(deps, run, row)
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
