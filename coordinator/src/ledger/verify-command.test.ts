// `ledger verify` reads what the coordinator it checks serves: a hostile or broken answer must
// end in a message and exit code 2, never a throw or unbounded memory.
import { afterEach, test } from 'vitest'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { canonicalReportMetadata, ledgerEntryHash, ledgerGenesisHash } from '@barnraise/protocol'
import type { LedgerEntry, ReportMetadata } from '@barnraise/protocol'
import { ledgerVerifyCommand } from './verify-command.ts'

const runId = '3f2b6c1e-8d7a-4c55-9e61-0b2f4a9c7d13'
const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0)) await c() })

/** A coordinator stand-in: `ledger` answers /ledger.json, heads are always `[]`. */
async function serve (ledger: (res: ServerResponse) => void): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (req.url?.endsWith('/ledger-heads.json') === true) { res.writeHead(200, { 'content-type': 'application/json' }); res.end('[]'); return }
    ledger(res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)) })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
}

async function verify (argv: string[], maxBytes?: number): Promise<{ code: number, said: string[], failed: string[] }> {
  const said: string[] = []
  const failed: string[] = []
  const code = await ledgerVerifyCommand(['--run', runId, ...argv], (line) => { said.push(line) }, (message) => { failed.push(message); return 2 }, maxBytes === undefined ? {} : { maxBytes })
  return { code, said, failed }
}

async function oneRowLedger (): Promise<LedgerEntry[]> {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  const meta: ReportMetadata = { runId, round: 1, assignmentId: '00000000-0000-4000-8000-000000000001', peerId, tokens: 10, computeSeconds: 2, lossCurve: [1], codec: 'int8', payloadBytes: 4, payloadSha256: 'a'.repeat(64) }
  const fields = {
    runId, round: 1, nodeId: null, peerId, organizationId: null, assignmentId: meta.assignmentId, tokens: 10, computeSeconds: 2, outcome: 'accepted' as const, reason: null,
    metadata: new TextDecoder().decode(canonicalReportMetadata(meta)), signature: Buffer.from(await key.sign(canonicalReportMetadata(meta))).toString('base64'), prevHash: await ledgerGenesisHash(runId)
  }
  return [{ seq: 1, ...fields, hash: await ledgerEntryHash(fields) }]
}

test('a coordinator that serves its ledger whole verifies', async () => {
  const text = JSON.stringify(await oneRowLedger())
  const url = await serve((res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(text) })
  const r = await verify(['--from', url])
  assert.equal(r.code, 0, r.failed.join('\n'))
  assert.match(r.said.join('\n'), /ledger OK: 1 rows/)
  assert.match(r.said.join('\n'), /no signed head was checked: the chain agrees with itself/, 'an OK without a head says what it does not prove')
})

test('a ledger cut off mid-answer is a message with what to do, not a crash', async () => {
  const url = await serve((res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' })
    res.write('[{"seq":1,')
    setImmediate(() => res.destroy())
  })
  const r = await verify(['--from', url])
  assert.equal(r.code, 2)
  assert.match(r.failed.join('\n'), /stopped sending before the end \(the connection broke\); try again, or save it/)
})

test('an endless ledger is read only up to the limit', async () => {
  const chunk = Buffer.alloc(64 * 1024, 0x20)
  const url = await serve((res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const pump = (): void => { while (!res.destroyed && res.write(chunk)); if (!res.destroyed) res.once('drain', pump) }
    res.write('[')
    pump()
  })
  const r = await verify(['--from', url], 1024 * 1024)
  assert.equal(r.code, 2)
  assert.match(r.failed.join('\n'), /ledger\.json is larger than 1 MiB, the most ledger verify reads/)
})

test('an answer or file that is not UTF-8 is refused rather than read with replacement characters', async () => {
  const text = JSON.stringify(await oneRowLedger())
  // A byte that is not UTF-8 inside the reason: one reader sees U+FFFD, another a Latin-1 letter.
  const bytes = Buffer.from(text.replace('"reason":null', '"reason":"\u0001"'))
  bytes[bytes.indexOf(0x01)] = 0xff
  const url = await serve((res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(bytes) })
  const remote = await verify(['--from', url])
  assert.equal(remote.code, 2)
  assert.match(remote.failed.join('\n'), /is not UTF-8 text/)
  const dir = await mkdtemp(join(tmpdir(), 'barnraise-verify-'))
  cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'ledger.json'), bytes)
  const local = await verify(['--from', join(dir, 'ledger.json')])
  assert.equal(local.code, 2)
  assert.match(local.failed.join('\n'), /ledger\.json is not UTF-8 text/)
})

test('a row whose createdAt is not the coordinator\'s ISO-8601 spelling is unreadable input, named by field', async () => {
  const [row] = await oneRowLedger()
  const text = JSON.stringify([{ ...row, createdAt: '2026-11-23 10:00:00+00' }])
  const url = await serve((res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(text) })
  const r = await verify(['--from', url])
  assert.equal(r.code, 2)
  assert.match(r.failed.join('\n'), /the ledger: 0\.createdAt: must be an ISO-8601 UTC time with milliseconds/)
})
