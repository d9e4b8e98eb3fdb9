// Checkpoints over plain HTTP, like a model page: a run's list of checkpoints with file sizes,
// each checkpoint's Hugging Face folder file by file or as one streamed tar, and a stable
// "latest" address per run that follows the newest checkpoint.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import type { CheckpointFolder, CheckpointFolderDeps } from '../checkpoints/checkpoint-folder.ts'
import { CHECKPOINT_PAGE_MAX, FOLDER_TAR, checkpointFolder, checkpointSummary, latestCheckpointFolder, roundCheckpointFolder, runCheckpointFolders, tarEntries } from '../checkpoints/checkpoint-folder.ts'
import { tarChunks } from '../checkpoints/tar-writer.ts'
import { sendFile } from './send-file.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const SHA = /^[0-9a-f]{64}$/i
/** How long a "latest" answer may be reused: short, so downloads move on to the next checkpoint. */
const LATEST_MAX_AGE_S = 10
/** The model card and the tar (which holds it) can change when names or the first loss arrive. */
const CARD_MAX_AGE_S = 60
const IMMUTABLE = 'public, max-age=31536000, immutable'
const EXPOSED = 'etag, content-length, content-disposition, content-location, x-checkpoint-sha256, x-checkpoint-round'

function fail (res: ServerResponse, status: number, code: string, message: string, extra: Record<string, unknown> = {}): void {
  const text = JSON.stringify({ error: message, code, ...extra })
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'access-control-allow-origin': '*', 'cache-control': 'no-store' })
  res.end(text)
}

function json (res: ServerResponse, body: unknown, cacheControl = 'no-cache'): void {
  const text = JSON.stringify(body)
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'access-control-allow-origin': '*', 'cache-control': cacheControl })
  res.end(text)
}

function ordinal (n: number): string {
  const tens = n % 100
  const suffix = tens >= 11 && tens <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'
  return `${n}${suffix}`
}

/** 410 for a pruned checkpoint, naming the setting and the kept checkpoints nearest to it. */
async function gone (deps: CheckpointFolderDeps, res: ServerResponse, f: CheckpointFolder): Promise<void> {
  const kept = await deps.db.selectFrom('checkpoints').select(['round', 'sha256']).where('run_id', '=', f.runId).where('pruned_at', 'is', null).orderBy('round').execute()
  const before = kept.filter((k) => k.round < f.round).at(-1)
  const after = kept.find((k) => k.round > f.round)
  const nearby = [before, after].filter((k) => k !== undefined).map((k) => `round ${k.round} (/api/checkpoints/${k.sha256}/)`)
  fail(res, 410, 'ERR_CHECKPOINT_PRUNED',
    `the checkpoint of round ${f.round} of run "${f.runName}" was pruned: the run keeps round 0, every ${ordinal(f.keepEvery)} round and the latest (retention.keepEvery = ${f.keepEvery}), so its weights were deleted. ` +
    `${nearby.length > 0 ? `Nearest kept: ${nearby.join(' and ')}. ` : ''}All of the run's checkpoints: /api/runs/${f.runId}/checkpoints`,
    { round: f.round, runId: f.runId, keptRounds: kept.map((k) => k.round) })
}

/** Sends one file of a folder (or the whole folder as a tar); `latest` adds the headers of the moving address. */
async function sendFolderFile (deps: CheckpointFolderDeps, req: IncomingMessage, res: ServerResponse, f: CheckpointFolder, name: string, latest: boolean): Promise<void> {
  if (f.status === 'pruned') { await gone(deps, res, f); return }
  if (f.status === 'missing') {
    fail(res, 500, 'ERR_BLOB_MISSING', `the weights of checkpoint ${f.sha256} (round ${f.round}) are missing from this coordinator's blob store; its operator should check the data directory`)
    return
  }
  const identity: Record<string, string> = {
    'x-checkpoint-sha256': f.sha256,
    'x-checkpoint-round': String(f.round),
    'access-control-expose-headers': EXPOSED
  }
  // The moving address says which checkpoint it is serving now, and where that one lives for good.
  if (latest) identity['content-location'] = `${f.address}/${name}`
  if (name === FOLDER_TAR) {
    await sendFile(req, res, {
      size: f.tarSize,
      etag: f.tarEtag,
      cacheControl: latest ? `public, max-age=${LATEST_MAX_AGE_S}` : `public, max-age=${CARD_MAX_AGE_S}`,
      contentType: 'application/x-tar',
      filename: f.tarName,
      ranges: false,
      headers: identity,
      open: () => Readable.from(tarChunks(tarEntries(f.files, f.folderName, f.createdAt, (sha) => deps.blobs.createReadStream(sha))))
    })
    return
  }
  const file = f.files.find((x) => x.name === name)
  if (file === undefined) {
    fail(res, 404, 'ERR_NO_SUCH_FILE', `a checkpoint folder has ${f.files.map((x) => x.name).join(', ')}, and ${FOLDER_TAR} (all of them in one archive); there is no ${JSON.stringify(name.slice(0, 100))}`)
    return
  }
  await sendFile(req, res, {
    size: file.size,
    etag: file.etag,
    cacheControl: latest ? `public, max-age=${LATEST_MAX_AGE_S}` : file.immutable ? IMMUTABLE : `public, max-age=${CARD_MAX_AGE_S}`,
    contentType: file.contentType,
    filename: file.name,
    ranges: true,
    headers: identity,
    open: (start, end) => file.blob !== undefined
      ? deps.blobs.createReadStream(file.blob, start, end)
      : Readable.from([Buffer.from(file.bytes!.subarray(start, end + 1))])
  })
}

const PAGE_HELP = `list a run's checkpoints a page at a time with ?after=<round>&limit=<1…${CHECKPOINT_PAGE_MAX}>; the answer's Link header names the next page`

/** `?after=<round>&limit=<n>` of a run's checkpoint listing, or what is wrong with them. */
function listingPage (params: URLSearchParams): { after: number, limit: number } | string {
  const number = (name: string, fallback: number, min: number, max: number): number | string => {
    const raw = params.get(name)
    if (raw === null) return fallback
    if (!/^-?\d{1,10}$/.test(raw) || Number(raw) < min || Number(raw) > max) return `${name}=${JSON.stringify(raw.slice(0, 40))} is not a whole number from ${min} to ${max}: ${PAGE_HELP}`
    return Number(raw)
  }
  const after = number('after', -1, -1, 2 ** 31 - 1)
  const limit = number('limit', CHECKPOINT_PAGE_MAX, 1, CHECKPOINT_PAGE_MAX)
  if (typeof after === 'string') return after
  if (typeof limit === 'string') return limit
  return { after, limit }
}

const RUN_ID_HELP = 'a run id is a UUID such as 1b4e28ba-2fa1-41d2-883f-0016d3cca427; copy it from the run page\'s address, or list runs at /api/runs'
const SHA_HELP = 'a checkpoint id is the 64-character hex sha256 of its model.safetensors; list a run\'s checkpoints at /api/runs/<run id>/checkpoints'

/**
 * Answers `/api/runs/:id/checkpoints[/latest|/<round>[/<file>]]` and `/api/checkpoints/:sha256[/<file>]`.
 * `parts` is the path after `/api/`, split on `/`. Returns false for any other path.
 */
export async function handleCheckpointRequest (deps: CheckpointFolderDeps, req: IncomingMessage, res: ServerResponse, parts: string[]): Promise<boolean> {
  if (parts[0] === 'runs' && parts[2] === 'checkpoints') {
    const runId = parts[1]!
    if (!UUID.test(runId)) { fail(res, 400, 'ERR_BAD_RUN_ID', `${JSON.stringify(runId.slice(0, 80))} is not a run id: ${RUN_ID_HELP}`); return true }
    const rest = parts.slice(3)
    if (rest.length === 0 || (rest.length === 1 && rest[0] === '')) {
      const page = listingPage(new URL(req.url ?? '/', 'http://x').searchParams)
      if (typeof page === 'string') { fail(res, 400, 'ERR_BAD_PAGE', page); return true }
      const found = await runCheckpointFolders(deps, runId.toLowerCase(), { order: 'oldest', ...page })
      if (found === undefined) { fail(res, 404, 'ERR_RUN_NOT_FOUND', `no run ${runId} on this coordinator; list runs at /api/runs`); return true }
      const last = found.folders.at(-1)
      // The next page's address, as GitHub's API gives it: a long run is listed a page at a time.
      res.setHeader('access-control-expose-headers', 'link')
      if (found.more && last !== undefined) res.setHeader('link', `</api/runs/${runId.toLowerCase()}/checkpoints?after=${last.round}&limit=${page.limit}>; rel="next"`)
      json(res, found.folders.map(checkpointSummary))
      return true
    }
    if (/^\d{1,9}$/.test(rest[0]!) && rest.length <= 2) {
      // One round's checkpoint of this run: the address the run's own card and archive have
      // where another run kept the same weights (the sha256 address answers as that run).
      const round = Number(rest[0])
      const folder = await roundCheckpointFolder(deps, runId.toLowerCase(), round)
      if (folder === undefined) { fail(res, 404, 'ERR_CHECKPOINT_NOT_FOUND', `run ${runId} has no checkpoint of round ${round} on this coordinator; list its checkpoints at /api/runs/${runId}/checkpoints`); return true }
      if (rest.length === 1 || rest[1] === '') { json(res, checkpointSummary(folder)); return true }
      await sendFolderFile(deps, req, res, folder, rest[1]!, false)
      return true
    }
    if (rest[0] !== 'latest' || rest.length > 2) {
      fail(res, 404, 'ERR_NOT_FOUND', `no such address; use /api/runs/${runId}/checkpoints (the list), /api/runs/${runId}/checkpoints/<round>/<file> or /api/runs/${runId}/checkpoints/latest/<file> (the newest checkpoint), or /api/checkpoints/<sha256>/<file>`)
      return true
    }
    const latest = await latestCheckpointFolder(deps, runId.toLowerCase())
    if (latest === undefined) { fail(res, 404, 'ERR_RUN_NOT_FOUND', `no run ${runId} on this coordinator; list runs at /api/runs`); return true }
    if (rest.length === 1 || rest[1] === '') { json(res, checkpointSummary(latest), `public, max-age=${LATEST_MAX_AGE_S}`); return true }
    await sendFolderFile(deps, req, res, latest, rest[1]!, true)
    return true
  }
  if (parts[0] === 'checkpoints' && parts.length >= 2) {
    const sha = parts[1]!
    if (!SHA.test(sha)) { fail(res, 400, 'ERR_BAD_CHECKPOINT_ID', `${JSON.stringify(sha.slice(0, 80))} is not a checkpoint id: ${SHA_HELP}`); return true }
    if (parts.length > 3) { fail(res, 404, 'ERR_NO_SUCH_FILE', `a checkpoint folder has no subfolders; ask for /api/checkpoints/${sha}/<file>`); return true }
    const folder = await checkpointFolder(deps, sha.toLowerCase())
    if (folder === undefined) { fail(res, 404, 'ERR_CHECKPOINT_NOT_FOUND', `no checkpoint ${sha} on this coordinator; ${SHA_HELP}`); return true }
    if (parts.length === 2 || parts[2] === '') { json(res, checkpointSummary(folder)); return true }
    await sendFolderFile(deps, req, res, folder, parts[2]!, false)
    return true
  }
  return false
}
