import { test } from 'vitest'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { canonicalReportMetadata, parseReportMetadata } from './signed-report.ts'
import { LedgerFormatError, checkLedgerHead, ledgerEntryHash, ledgerGenesisHash, parseLedgerHeads, parseLedgerJson, signLedgerHead, verifyLedger } from './ledger-chain.ts'
import type { LedgerEntry } from './ledger-chain.ts'

const runId = '00000000-0000-4000-8000-000000000001'
const uuid = (i: number): string => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`

/** A valid chain of `n` accepted rows signed by one node, with its organization and node named, each hashed with its time (v6). */
async function chain (n: number): Promise<LedgerEntry[]> {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  let prev = await ledgerGenesisHash(runId)
  const rows: LedgerEntry[] = []
  for (let i = 0; i < n; i++) {
    const meta = { runId, round: i, assignmentId: uuid(100 + i), peerId, tokens: 10 + i, computeSeconds: 2, lossCurve: [1], codec: 'int8' as const, payloadBytes: 4, payloadSha256: 'a'.repeat(64) }
    const fields = {
      runId, round: i, nodeId: uuid(7), peerId, organizationId: uuid(8), assignmentId: meta.assignmentId, tokens: meta.tokens, computeSeconds: 2,
      outcome: 'accepted' as const, reason: null, metadata: new TextDecoder().decode(canonicalReportMetadata(meta)),
      signature: Buffer.from(await key.sign(canonicalReportMetadata(meta))).toString('base64'), prevHash: prev,
      createdAt: new Date(Date.UTC(2026, 10, 23, 10, i)).toISOString()
    }
    const hash = await ledgerEntryHash(fields)
    rows.push({ seq: i + 1, ...fields, hash })
    prev = hash
  }
  return rows
}

test('ledger JSON: any JSON or bytes parse into rows or throw LedgerFormatError; verifying parsed rows never throws', async () => {
  const valid = await chain(2)
  const text = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    // A valid row with one field replaced by anything.
    fc.tuple(fc.constantFrom(...Object.keys(valid[0]!)), fc.jsonValue({ maxDepth: 1 })).map(([k, v]) => JSON.stringify([{ ...valid[0], [k]: v }]))
  )
  await fc.assert(fc.asyncProperty(text, async (t) => {
    let rows: LedgerEntry[]
    try {
      rows = parseLedgerJson(t)
    } catch (err) {
      assert.ok(err instanceof LedgerFormatError, String(err))
      return
    }
    const verdict = await verifyLedger(runId, rows)
    assert.equal(typeof verdict.ok, 'boolean')
  }), { numRuns: 400 })
})

test('ledger chain: changing any hashed field of any row, organization and node included, fails verification', async () => {
  const rows = await chain(4)
  const fields = ['round', 'nodeId', 'peerId', 'organizationId', 'assignmentId', 'tokens', 'computeSeconds', 'outcome', 'reason', 'metadata', 'signature', 'prevHash', 'hash', 'executor', 'score', 'createdAt'] as const
  const replacement = fc.oneof(fc.string({ maxLength: 40 }), fc.integer(), fc.constant(null), fc.constant('refused'),
    fc.integer({ min: -1e10, max: 1e10 }).map((ms) => new Date(Date.UTC(2026, 10, 23, 10) + ms).toISOString()))
  await fc.assert(fc.asyncProperty(fc.nat({ max: 3 }), fc.constantFrom(...fields), replacement, fc.boolean(), async (at, field, value, rehash) => {
    const altered = rows.map((r) => ({ ...r }))
    const row = altered[at] as unknown as Record<string, unknown>
    fc.pre(row[field] !== value && !((field === 'executor' || field === 'score') && value === null))
    row[field] = value
    // A careful forger re-hashes the row and re-chains the rest.
    if (rehash && field !== 'hash') {
      for (let i = at; i < altered.length; i++) {
        if (i > at) altered[i]!.prevHash = altered[i - 1]!.hash
        altered[i]!.hash = await ledgerEntryHash(altered[i]!)
      }
    }
    const verdict = await verifyLedger(runId, altered)
    const unsigned = field === 'nodeId' || field === 'organizationId' || field === 'reason' || field === 'score' || field === 'createdAt' || (field === 'outcome' && value === 'refused')
    if (rehash && unsigned) {
      // Not in what the node signed, and re-chained: the chain alone cannot tell; a kept head can.
      const key = await generateKeyPair('Ed25519')
      const head = await signLedgerHead(key, { runId, round: 3, seq: 4, rows: 4, hash: rows[3]!.hash, signedAt: 'then', coordinator: peerIdFromPrivateKey(key).toString() })
      assert.match(await checkLedgerHead(runId, altered, head) ?? '', /rewritten/)
    } else {
      assert.equal(verdict.ok, false, `${field} of row ${at + 1} → ${JSON.stringify(value)}`)
    }
  }), { numRuns: 300 })
})

test('ledger heads: hostile head files parse or throw LedgerFormatError, and checking one never throws', async () => {
  const rows = await chain(2)
  const key = await generateKeyPair('Ed25519')
  const good = await signLedgerHead(key, { runId, round: 1, seq: 2, rows: 2, hash: rows[1]!.hash, signedAt: 'now', coordinator: peerIdFromPrivateKey(key).toString() })
  const text = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
    fc.tuple(fc.constantFrom(...Object.keys(good)), fc.jsonValue({ maxDepth: 1 })).map(([k, v]) => JSON.stringify({ ...good, [k]: v }))
  )
  await fc.assert(fc.asyncProperty(text, async (t) => {
    try {
      for (const head of parseLedgerHeads(t)) {
        const problem = await checkLedgerHead(runId, rows, head)
        if (JSON.stringify(head) !== JSON.stringify(good)) assert.notEqual(problem, undefined, 'only the signed head checks out')
      }
    } catch (err) {
      assert.ok(err instanceof LedgerFormatError, String(err))
    }
  }), { numRuns: 300 })
})

test('signed metadata text: any string parses to fields or undefined, and round-trips what a node signs', () => {
  const hostile = fc.oneof(fc.string({ maxLength: 300 }), fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
    fc.array(fc.jsonValue({ maxDepth: 1 }), { minLength: 11, maxLength: 12 }).map((a) => JSON.stringify(['barnraise-report-v1', ...a].slice(0, 11))))
  fc.assert(fc.property(hostile, (text) => {
    const parsed = parseReportMetadata(text)
    assert.ok(parsed === undefined || (typeof parsed === 'object' && parsed !== null))
  }), { numRuns: 500 })
  const metadata = fc.record({
    runId: fc.uuid(), round: fc.nat(), assignmentId: fc.uuid(), peerId: fc.string({ minLength: 1, maxLength: 60 }),
    tokens: fc.nat(), computeSeconds: fc.double({ min: 0, max: 1e6, noNaN: true }), lossCurve: fc.array(fc.double({ min: 0, max: 20, noNaN: true }), { maxLength: 5 }),
    codec: fc.constantFrom('fp32' as const, 'fp16' as const, 'int8' as const), payloadBytes: fc.nat(), payloadSha256: fc.stringMatching(/^[0-9a-f]{64}$/)
  })
  fc.assert(fc.property(metadata, (m) => {
    const text = new TextDecoder().decode(canonicalReportMetadata(m))
    assert.deepEqual(parseReportMetadata(text), JSON.parse(JSON.stringify(m)))
  }), { numRuns: 200 })
})
