// The two raw-body uploads: pieces of a dataset file, and a tokenizer.json. Everything else in
// the API is tRPC with JSON bodies; these carry megabytes of bytes that JSON would inflate.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { DatasetLibrary } from '../datasets/dataset-library.ts'
import { storeUploadedTokenizer } from '../datasets/run-tokenizers.ts'
import type { DataQuota } from '../datasets/data-storage.ts'
import { MAX_TOKENIZER_JSON_BYTES } from '@barnraise/datasets'
import { SESSION_COOKIE, userForSession } from '../accounts/accounts.ts'
import { hasRole } from '../accounts/roles.ts'
import { parseCookies } from './cookies.ts'
import { foreignOriginRefusal } from './request-guard.ts'
import type { OriginOptions } from './request-guard.ts'
import { CoordinatorError } from '../errors.ts'
import type { CoordinatorErrorCode } from '../errors.ts'
import { takeOrRefuse } from '../limits/api-rates.ts'
import type { ApiRates } from '../limits/api-rates.ts'

export interface UploadContext { db: Kysely<Database>, blobs: BlobStore, datasets: DatasetLibrary, rates: ApiRates, limits: DataQuota }

// A UUID, lower case (the id also names the staged file, so a dataset has one spelling): 36
// characters of hex and dashes in any order had passed, and failed the uuid column as a 500.
const FILE_PATH = /^\/api\/datasets\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/file$/
const CONTENT_RANGE = /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15})$/

const STATUS: Partial<Record<CoordinatorErrorCode, number>> = { ERR_NOT_FOUND: 404, ERR_CONFLICT: 409, ERR_INVALID_INPUT: 400, ERR_BUSY: 429, ERR_RATE_LIMITED: 429, ERR_QUOTA_EXCEEDED: 413, ERR_FORBIDDEN: 403 }

function send (res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody (req: IncomingMessage, max: number): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > max) throw new CoordinatorError('ERR_INVALID_INPUT', `the body is larger than ${max / 1024 / 1024} MiB`)
    chunks.push(chunk)
  }
  return Buffer.concat(chunks)
}

/** Handles PUT /api/datasets/<id>/file and PUT /api/tokenizers; false for any other path. */
export async function handleUpload (ctx: UploadContext, req: IncomingMessage, res: ServerResponse, path: string, origins: OriginOptions = {}): Promise<boolean> {
  const fileMatch = FILE_PATH.exec(path)
  if (fileMatch === null && path !== '/api/tokenizers') return false
  const refuse = (status: number, code: string, error: string): true => {
    req.resume()
    send(res, status, { code, error })
    return true
  }
  if (req.method !== 'PUT') return refuse(405, 'ERR_METHOD', 'use PUT')
  const foreign = foreignOriginRefusal(req, origins)
  if (foreign !== null) return refuse(403, 'ERR_FORBIDDEN', foreign)
  const user = await userForSession(ctx.db, parseCookies(req.headers.cookie).get(SESSION_COOKIE))
  if (user === null) return refuse(401, 'ERR_UNAUTHORIZED', 'sign in first')
  if (!hasRole(user.roles, 'organizer')) return refuse(403, 'ERR_FORBIDDEN', 'this needs the organizer role')
  try {
    if (fileMatch !== null) {
      const range = CONTENT_RANGE.exec(String(req.headers['content-range'] ?? ''))
      if (range === null) return refuse(400, 'ERR_INVALID_INPUT', 'send Content-Range: bytes <first>-<last>/<file size>')
      const start = Number(range[1])
      const last = Number(range[2])
      const total = Number(range[3])
      if (last < start) return refuse(400, 'ERR_INVALID_INPUT', 'Content-Range ends before it starts')
      const length = Number(req.headers['content-length'] ?? NaN)
      if (length !== last - start + 1) return refuse(400, 'ERR_INVALID_INPUT', 'Content-Length must equal the bytes Content-Range names')
      const view = await ctx.datasets.append(fileMatch[1]!, user.id, { start, length, total }, req)
      send(res, 200, view)
    } else {
      takeOrRefuse(ctx.rates.datasetUploads, user.id, 'dataset uploads')
      const bytes = await readBody(req, MAX_TOKENIZER_JSON_BYTES)
      send(res, 200, await storeUploadedTokenizer(ctx, bytes, user.id, ctx.limits))
    }
  } catch (err) {
    if (!(err instanceof CoordinatorError)) throw err
    const body: Record<string, unknown> = { code: err.code, error: err.message }
    if (fileMatch !== null && err.code === 'ERR_CONFLICT') {
      const row = await ctx.db.selectFrom('datasets').select('received_bytes').where('id', '=', fileMatch[1]!).executeTakeFirst()
      if (row !== undefined) body.receivedBytes = row.received_bytes
    }
    req.resume()
    if (!res.headersSent) send(res, STATUS[err.code] ?? 400, body)
  }
  return true
}
