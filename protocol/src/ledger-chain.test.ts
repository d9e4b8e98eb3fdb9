import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { canonicalReportMetadata } from './signed-report.ts'
import type { ReportMetadata } from './signed-report.ts'
import { checkLedgerHead, isLedgerTime, ledgerEntryHash, ledgerGenesisHash, parseLedgerHeads, parseLedgerJson, repeatedJsonKey, signLedgerHead, verifyLedger } from './ledger-chain.ts'
import type { LedgerEntry, LedgerEntryFields } from './ledger-chain.ts'

const runId = '00000000-0000-4000-8000-000000000001'

async function chain (n: number): Promise<LedgerEntry[]> {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  let prev = await ledgerGenesisHash(runId)
  const rows: LedgerEntry[] = []
  for (let i = 0; i < n; i++) {
    const assignmentId = `00000000-0000-4000-8000-00000000010${i}`
    const meta: ReportMetadata = { runId, round: i, assignmentId, peerId, tokens: 100 + i, computeSeconds: 1.5, lossCurve: [3, 2], codec: 'int8', payloadBytes: 10, payloadSha256: 'a'.repeat(64) }
    const metadata = new TextDecoder().decode(canonicalReportMetadata(meta))
    const signature = Buffer.from(await key.sign(canonicalReportMetadata(meta))).toString('base64')
    const refused = i === 1
    const fields = {
      runId, round: i, nodeId: null, peerId, organizationId: null, assignmentId,
      tokens: refused ? 0 : meta.tokens, computeSeconds: refused ? 0 : 1.5,
      outcome: refused ? 'refused' as const : 'accepted' as const, reason: refused ? 'NaN in payload' : null,
      metadata: refused ? null : metadata, signature: refused ? null : signature, prevHash: prev
    }
    const hash = await ledgerEntryHash(fields)
    rows.push({ seq: i + 1, ...fields, hash })
    prev = hash
  }
  return rows
}

test('an untouched ledger verifies', async () => {
  assert.deepEqual(await verifyLedger(runId, await chain(4)), { ok: true, rows: 4 })
})

test('altering, dropping or forging a row names it', async () => {
  const rows = await chain(4)
  const altered = rows.map((r) => ({ ...r }))
  altered[2]!.tokens = 999
  const v1 = await verifyLedger(runId, altered)
  assert.equal(v1.ok, false)
  assert.equal(!v1.ok && v1.seq, 3)
  assert.match(!v1.ok ? v1.reason : '', /altered/)

  const dropped = rows.filter((_, i) => i !== 1)
  const v2 = await verifyLedger(runId, dropped)
  assert.equal(!v2.ok && v2.seq, 3)
  assert.match(!v2.ok ? v2.reason : '', /prev_hash/)

  // Re-hash a changed row so the chain is consistent: the signature still catches it.
  const forged = rows.map((r) => ({ ...r }))
  forged[0]!.tokens = 5000
  forged[0]!.hash = await ledgerEntryHash(forged[0]!)
  forged[1]!.prevHash = forged[0]!.hash
  const v3 = await verifyLedger(runId, forged)
  assert.equal(!v3.ok && v3.seq, 1)
  assert.match(!v3.ok ? v3.reason : '', /disagrees with what the node signed/)

  const badSig = rows.map((r) => ({ ...r }))
  badSig[3]!.signature = Buffer.from(new Uint8Array(64)).toString('base64')
  badSig[3]!.hash = await ledgerEntryHash(badSig[3]!)
  const v4 = await verifyLedger(runId, badSig)
  assert.equal(!v4.ok && v4.seq, 4)
  assert.match(!v4.ok ? v4.reason : '', /signature/)
})

test('rows that name their executor (v2) chain after v1 rows; the executor is signed and hashed', async () => {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  const rows = await chain(2)
  let prev = rows.at(-1)!.hash
  for (const [i, executor] of (['torch-cuda', 'typescript'] as const).entries()) {
    const assignmentId = `00000000-0000-4000-8000-00000000020${i}`
    const meta: ReportMetadata = { runId, round: 5 + i, assignmentId, peerId, tokens: 7, computeSeconds: 2, lossCurve: [1], codec: 'fp16', payloadBytes: 4, payloadSha256: 'b'.repeat(64), executor }
    const metadata = new TextDecoder().decode(canonicalReportMetadata(meta))
    assert.match(metadata, new RegExp(`^\\["barnraise-report-v2",.*,"${executor}"\\]$`))
    const fields = {
      runId, round: 5 + i, nodeId: null, peerId, organizationId: null, assignmentId, tokens: 7, computeSeconds: 2,
      outcome: 'accepted' as const, reason: null, metadata, signature: Buffer.from(await key.sign(canonicalReportMetadata(meta))).toString('base64'), prevHash: prev, executor
    }
    const hash = await ledgerEntryHash(fields)
    rows.push({ seq: rows.length + 1, ...fields, hash })
    prev = hash
  }
  assert.deepEqual(await verifyLedger(runId, rows), { ok: true, rows: 4 })

  // The row's executor is part of its hash…
  const relabelled = rows.map((r) => ({ ...r }))
  relabelled[2]!.executor = 'typescript'
  const v1 = await verifyLedger(runId, relabelled)
  assert.match(!v1.ok ? v1.reason : '', /altered/)
  // …and, re-hashed, it still disagrees with what the node signed.
  relabelled[2]!.hash = await ledgerEntryHash(relabelled[2]!)
  relabelled[3]!.prevHash = relabelled[2]!.hash
  relabelled[3]!.hash = await ledgerEntryHash(relabelled[3]!)
  const v2 = await verifyLedger(runId, relabelled)
  assert.equal(!v2.ok && v2.seq, 3)
  assert.match(!v2.ok ? v2.reason : '', /disagrees with what the node signed/)
})

/** An accepted row of round 2 (9 tokens, int8), signed by a new node over its metadata with `meta`, chained after `prevHash`, with the row's own `extra` fields. */
async function acceptedRoundTwo (prevHash: string, assignmentId: string, meta: Partial<ReportMetadata>, extra: Partial<LedgerEntryFields>): Promise<LedgerEntryFields> {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  const signed: ReportMetadata = { runId, round: 2, assignmentId, peerId, tokens: 9, computeSeconds: 3, lossCurve: [1], codec: 'int8', payloadBytes: 4, payloadSha256: 'c'.repeat(64), ...meta }
  return {
    runId, round: 2, nodeId: null, peerId, organizationId: null, assignmentId, tokens: 9, computeSeconds: 3, outcome: 'accepted', reason: null,
    metadata: new TextDecoder().decode(canonicalReportMetadata(signed)), signature: Buffer.from(await key.sign(canonicalReportMetadata(signed))).toString('base64'),
    prevHash, ...extra
  }
}

test('a row trained on several devices verifies, and a device count that disagrees with the signed one is named', async () => {
  const rows = await chain(1)
  const fields = await acceptedRoundTwo(rows[0]!.hash, '00000000-0000-4000-8000-000000000301', { executor: 'torch-cuda', devices: 4 }, { executor: 'torch-cuda' })
  rows.push({ seq: 2, ...fields, hash: await ledgerEntryHash(fields), devices: 4 })
  assert.deepEqual(await verifyLedger(runId, rows), { ok: true, rows: 2 })
  // An export from before the column (no field) still verifies: the count is in the signed text.
  assert.deepEqual(await verifyLedger(runId, rows.map(({ devices: _, ...r }) => r)), { ok: true, rows: 2 })
  for (const devices of [8, null]) {
    const verdict = await verifyLedger(runId, rows.map((r, i) => (i === 1 ? { ...r, devices } : r)))
    assert.equal(!verdict.ok && verdict.seq, 2)
    assert.match(!verdict.ok ? verdict.reason : '', /disagrees with what the node signed/)
  }
  // The coordinator credits 2 of the 4 (its judgement, hashed with the row as ledger v4).
  const creditedFields = { ...fields, creditedDevices: 2 }
  const credited = [rows[0]!, { seq: 2, ...creditedFields, hash: await ledgerEntryHash(creditedFields), devices: 4 }]
  assert.notEqual(credited[1]!.hash, rows[1]!.hash)
  assert.deepEqual(await verifyLedger(runId, credited), { ok: true, rows: 2 })
  // Raising it afterwards breaks the row's hash; a row hashed with more than the node signed is named.
  const raised = await verifyLedger(runId, credited.map((r, i) => (i === 1 ? { ...r, creditedDevices: 4 } : r)))
  assert.match(!raised.ok ? raised.reason : '', /hash does not match/)
  const tooManyFields = { ...fields, creditedDevices: 5 }
  const tooMany = await verifyLedger(runId, [rows[0]!, { seq: 2, ...tooManyFields, hash: await ledgerEntryHash(tooManyFields), devices: 4 }])
  assert.match(!tooMany.ok ? tooMany.reason : '', /credits 5 devices where the node signed 4/)
})

test('a CPU row\'s credited cores are hashed with it (v5): raising them afterwards breaks the hash, and a count out of range is named', async () => {
  const rows = await chain(1)
  const fields = await acceptedRoundTwo(rows[0]!.hash, '00000000-0000-4000-8000-000000000401', { executor: 'typescript' }, { executor: 'typescript', creditedCores: 2 })
  const row = { seq: 2, ...fields, hash: await ledgerEntryHash(fields) }
  assert.notEqual(row.hash, await ledgerEntryHash({ ...fields, creditedCores: null }))
  assert.deepEqual(await verifyLedger(runId, [rows[0]!, row]), { ok: true, rows: 2 })
  const raised = await verifyLedger(runId, [rows[0]!, { ...row, creditedCores: 64 }])
  assert.match(!raised.ok ? raised.reason : '', /hash does not match/)
  const wildFields = { ...fields, creditedCores: 5000 }
  const wild = await verifyLedger(runId, [rows[0]!, { seq: 2, ...wildFields, hash: await ledgerEntryHash(wildFields) }])
  assert.match(!wild.ok ? wild.reason : '', /credits 5000 CPU cores \(0 for GPU time, else 1 to 4096\)/)
})

test('metadata without an executor signs the exact v1 bytes, so rows from before the field verify unchanged', () => {
  const meta: ReportMetadata = { runId, round: 1, assignmentId: runId, peerId: 'p', tokens: 1, computeSeconds: 0.5, lossCurve: [2.5], codec: 'int8', payloadBytes: 3, payloadSha256: 'c'.repeat(64) }
  assert.equal(new TextDecoder().decode(canonicalReportMetadata(meta)),
    `["barnraise-report-v1","${runId}",1,"${runId}","p",1,0.5,[2.5],"int8",3,"${'c'.repeat(64)}"]`)
})

test('a scored row (v3) chains after unscored ones; its score is hashed, and a row without one hashes as before', async () => {
  const rows = await chain(3)
  const unscored = await ledgerEntryHash(rows[2]!)
  assert.equal(await ledgerEntryHash({ ...rows[2]!, score: null }), unscored, 'a null score hashes like a row from before the field')
  // Re-score the last two rows, as a coordinator that screens reports writes them.
  for (const i of [1, 2]) {
    rows[i]!.prevHash = rows[i - 1]!.hash
    rows[i]!.score = i === 1 ? -0.25 : 0.0125
    rows[i]!.hash = await ledgerEntryHash(rows[i]!)
  }
  assert.deepEqual(await verifyLedger(runId, rows), { ok: true, rows: 3 })
  assert.deepEqual(parseLedgerJson(JSON.stringify(rows)).map((r) => r.score ?? null), [null, -0.25, 0.0125])
  const inflated = rows.map((r) => ({ ...r }))
  inflated[1]!.score = 0.5
  const verdict = await verifyLedger(runId, inflated)
  assert.equal(!verdict.ok && verdict.seq, 2)
  assert.throws(() => parseLedgerJson(JSON.stringify([{ ...rows[1], score: 'high' }])), /score/)
})

test('a second accepted row for one work unit is refused even when each row is signed and chained', async () => {
  const rows = await chain(3)
  // Replay row 1 (accepted, signed) as a fourth row, correctly chained.
  const replay = { ...rows[0]!, seq: 4, prevHash: rows[2]!.hash }
  replay.hash = await ledgerEntryHash(replay)
  const v = await verifyLedger(runId, [...rows, replay])
  assert.equal(!v.ok && v.seq, 4)
  assert.match(!v.ok ? v.reason : '', /credited twice/)
})

test('a signed head matches its ledger and catches a rewritten one', async () => {
  const key = await generateKeyPair('Ed25519')
  const coordinator = peerIdFromPrivateKey(key).toString()
  const rows = await chain(4)
  const head = await signLedgerHead(key, { runId, round: 2, seq: 3, rows: 3, hash: rows[2]!.hash, signedAt: '2026-11-23T00:00:00.000Z', coordinator })
  assert.equal(await checkLedgerHead(runId, rows, head, coordinator), undefined)
  assert.deepEqual(parseLedgerHeads(JSON.stringify(head)), [head], 'one head or a list of them')

  const rewritten = rows.map((r) => ({ ...r }))
  rewritten[0]!.organizationId = '00000000-0000-4000-8000-00000000ffff'
  let prev = await ledgerGenesisHash(runId)
  for (const r of rewritten) { r.prevHash = prev; r.hash = await ledgerEntryHash(r); prev = r.hash }
  assert.deepEqual(await verifyLedger(runId, rewritten), { ok: true, rows: 4 }, 'consistent on its own')
  assert.match(await checkLedgerHead(runId, rewritten, head, coordinator) ?? '', /history was rewritten/)
  assert.match(await checkLedgerHead(runId, rows.slice(0, 2), head, coordinator) ?? '', /missing/)

  const other = await generateKeyPair('Ed25519')
  assert.match(await checkLedgerHead(runId, rows, head, peerIdFromPrivateKey(other).toString()) ?? '', /not the coordinator/)
  assert.match(await checkLedgerHead(runId, rows, { ...head, seq: 2, hash: rows[1]!.hash }, coordinator) ?? '', /signature does not verify/)
})

test('exported ledgers and heads parse into typed rows or fail with ERR_MALFORMED_LEDGER', async () => {
  const rows = await chain(2)
  assert.deepEqual(parseLedgerJson(JSON.stringify(rows)), rows)
  for (const text of ['', 'null', '{}', '[{"seq": "1"}]', JSON.stringify([{ ...rows[0]!, hash: 'x' }])]) {
    assert.throws(() => parseLedgerJson(text), (err: unknown) => (err as { code?: string }).code === 'ERR_MALFORMED_LEDGER', text)
  }
  assert.throws(() => parseLedgerHeads('[1]'), (err: unknown) => (err as { code?: string }).code === 'ERR_MALFORMED_LEDGER')
})

/** Re-hashes `rows` from the first and chains each onto the one before, as a careful forger would. */
async function rechain (rows: LedgerEntry[]): Promise<LedgerEntry[]> {
  let prev = await ledgerGenesisHash(runId)
  for (const r of rows) { r.prevHash = prev; r.hash = await ledgerEntryHash(r); prev = r.hash }
  return rows
}

test('metadata a node signed in a non-canonical spelling is refused, though the signature over it verifies', async () => {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  const assignmentId = '00000000-0000-4000-8000-000000000200'
  const meta: ReportMetadata = { runId, round: 0, assignmentId, peerId, tokens: 100, computeSeconds: 1.5, lossCurve: [3, 2], codec: 'int8', payloadBytes: 10, payloadSha256: 'a'.repeat(64) }
  const canonical = new TextDecoder().decode(canonicalReportMetadata(meta))
  // The same fields, spelled so another reader could take 100 tokens for something else.
  const respelled = canonical.replace(',100,', ',1e2,').replace(',[3,2],', ', [3, 2],')
  assert.notEqual(respelled, canonical)
  const signature = Buffer.from(await key.sign(new TextEncoder().encode(respelled))).toString('base64')
  const [row] = await rechain([{
    seq: 1, runId, round: 0, nodeId: null, peerId, organizationId: null, assignmentId, tokens: 100, computeSeconds: 1.5,
    outcome: 'accepted', reason: null, metadata: respelled, signature, prevHash: '', hash: ''
  }])
  const v = await verifyLedger(runId, [row!])
  assert.equal(v.ok, false)
  assert.match(!v.ok ? v.reason : '', /not well-formed canonical report metadata/)
})

test('one work unit credited twice is refused when the second row names it in upper case', async () => {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key).toString()
  const unit = '0000000a-0000-4000-8000-00000000abcd'
  const rows: LedgerEntry[] = []
  for (const [i, assignmentId] of [unit, unit.toUpperCase()].entries()) {
    const meta: ReportMetadata = { runId, round: 0, assignmentId, peerId, tokens: 100, computeSeconds: 1.5, lossCurve: [3, 2], codec: 'int8', payloadBytes: 10, payloadSha256: 'a'.repeat(64) }
    rows.push({
      seq: i + 1, runId, round: 0, nodeId: null, peerId, organizationId: null, assignmentId, tokens: 100, computeSeconds: 1.5, outcome: 'accepted', reason: null,
      metadata: new TextDecoder().decode(canonicalReportMetadata(meta)), signature: Buffer.from(await key.sign(canonicalReportMetadata(meta))).toString('base64'), prevHash: '', hash: ''
    })
  }
  const v = await verifyLedger(runId, await rechain(rows))
  assert.equal(!v.ok && v.seq, 2)
})

test('rows renumbered out of chain order are refused: seq is not hashed, but rows are named by it', async () => {
  const rows = await chain(3)
  const swapped = rows.map((r) => ({ ...r }))
  swapped[0]!.seq = 3
  swapped[2]!.seq = 1
  const v = await verifyLedger(runId, swapped)
  assert.equal(!v.ok && v.index, 1)
  assert.match(!v.ok ? v.reason : '', /renumbered/)
  const repeated = rows.map((r) => ({ ...r, seq: 7 }))
  assert.equal((await verifyLedger(runId, repeated)).ok, false, 'one seq on every row')
  assert.deepEqual(await verifyLedger(runId, rows.map((r) => ({ ...r, seq: r.seq * 10 }))), { ok: true, rows: 3 }, 'gaps are fine: seqs are shared by every run')
})

test('an export or head that names a key twice is refused: readers disagree on which one counts', async () => {
  const key = await generateKeyPair('Ed25519')
  const coordinator = peerIdFromPrivateKey(key).toString()
  const rows = await chain(2)
  const text = JSON.stringify(rows)
  // The row verifies with the organization this parser keeps (the last); a first-wins reader credits another.
  const twice = text.replace('"organizationId":null', '"organizationId":"00000000-0000-4000-8000-00000000beef","organizationId":null')
  assert.notEqual(twice, text)
  assert.throws(() => parseLedgerJson(twice), (err: unknown) => (err as { code?: string }).code === 'ERR_MALFORMED_LEDGER' && /"organizationId" twice/.test((err as Error).message))
  const escaped = text.replace('"reason":null', '"reason":null,"re\\u0061son":"x"')
  assert.throws(() => parseLedgerJson(escaped), /"reason" twice/, 'an escape spells the same key')
  const head = await signLedgerHead(key, { runId, round: 1, seq: 2, rows: 2, hash: rows[1]!.hash, signedAt: '2026-11-23T00:00:00.000Z', coordinator })
  assert.throws(() => parseLedgerHeads(JSON.stringify(head).replace('{', '{"seq":1,')), /"seq" twice/)
  // The same key in different objects, and keys' names as values, are not repeats.
  assert.deepEqual(parseLedgerJson(text), rows)
  assert.equal(repeatedJsonKey('[{"a":{"a":["a",{"a":1}]},"b":"a"},{"a":2}]'), undefined)
  assert.equal(repeatedJsonKey('{"a":{"b":1},"c":[{"d":2}],"a":3}'), 'a')
})

test('checking a head per round against a long ledger looks at a few rows per head, not the whole ledger each time', async () => {
  // A hostile coordinator may publish thousands of heads; each one scanning every row is rounds × rows.
  const key = await generateKeyPair('Ed25519')
  const coordinator = peerIdFromPrivateKey(key).toString()
  const rows = 2000
  let seqReads = 0
  const entries = Array.from({ length: rows }, (_, i) => {
    const hash = (i + 1).toString(16).padStart(64, '0')
    return { get seq () { seqReads++; return (i + 1) * 3 }, hash } as unknown as LedgerEntry
  })
  const heads = []
  for (let round = 1; round <= 40; round++) {
    const at = round * 49
    heads.push(await signLedgerHead(key, { runId, round, seq: (at + 1) * 3, rows: at + 1, hash: entries[at]!.hash, signedAt: 'then', coordinator }))
  }
  for (const head of heads) assert.equal(await checkLedgerHead(runId, entries, head, coordinator), undefined)
  assert.ok(seqReads < rows, `${seqReads} reads of a row's seq for ${heads.length} heads over ${rows} rows`)
  assert.match(await checkLedgerHead(runId, entries, { ...heads[0]!, seq: 4 }, coordinator) ?? '', /signature does not verify/)
})

const at = (ms: number): string => new Date(Date.UTC(2026, 10, 23, 10, 0, 0, ms)).toISOString()

/**
 * `rows` as a coordinator upgraded to ledger v6 before row `from` writes them: every row carries
 * its time, as exports do, and rows from `from` on hash it. Re-chained from the genesis.
 */
async function timedFrom (rows: LedgerEntry[], from: number): Promise<LedgerEntry[]> {
  const out = rows.map((r, i) => ({ ...r, createdAt: at(i * 1000 + 7) }))
  let prev = await ledgerGenesisHash(runId)
  for (const [i, r] of out.entries()) {
    r.prevHash = prev
    r.hash = await ledgerEntryHash(i >= from ? r : { ...r, createdAt: undefined })
    prev = r.hash
  }
  return out
}

test('a v6 row hashes its time with the v5 fields, exactly as documented, and verifies', async () => {
  const rows = await timedFrom(await chain(3), 0)
  assert.deepEqual(await verifyLedger(runId, rows), { ok: true, rows: 3 })
  const r = rows[2]!
  const expected = createHash('sha256').update(JSON.stringify(['barnraise-ledger-v6', r.runId, r.round, r.nodeId, r.peerId, r.organizationId, r.assignmentId,
    r.tokens, r.computeSeconds, r.outcome, r.reason, r.metadata, r.signature, r.prevHash, null, null, null, null, '2026-11-23T10:00:02.007Z'])).digest('hex')
  assert.equal(r.hash, expected)
  assert.notEqual(r.hash, await ledgerEntryHash({ ...r, createdAt: undefined }), 'the time is in the hash')
  // An export round-trips the time exactly, and what it parses verifies.
  assert.deepEqual(await verifyLedger(runId, parseLedgerJson(JSON.stringify(rows))), { ok: true, rows: 3 })
})

test('moving a v6 row\'s time by one millisecond is named; re-hashing it is caught by a kept head', async () => {
  const rows = await timedFrom(await chain(3), 0)
  const moved = rows.map((r) => ({ ...r }))
  moved[0]!.createdAt = at(6)
  const v = await verifyLedger(runId, moved)
  assert.equal(!v.ok && v.seq, 1)
  assert.match(!v.ok ? v.reason : '', /hash does not match the row's contents \(the row was altered\)/)
  moved[0] = { ...rows[0]! }
  moved[2]!.createdAt = at(2000 + 8)
  const later = await verifyLedger(runId, moved)
  assert.equal(!later.ok && later.seq, 3)
  assert.match(!later.ok ? later.reason : '', /createdAt 2026-11-23T10:00:02\.008Z \(the row was altered, or its time moved\)/)
  // A v6 row whose time an export left out cannot be checked; it says so.
  const dropped = await verifyLedger(runId, rows.map((r, i) => (i === 2 ? { ...r, createdAt: undefined } : r)))
  assert.match(!dropped.ok ? dropped.reason : '', /has no createdAt, which every row from seq=1 on hashes/)

  const key = await generateKeyPair('Ed25519')
  const coordinator = peerIdFromPrivateKey(key).toString()
  const head = await signLedgerHead(key, { runId, round: 2, seq: 3, rows: 3, hash: rows[2]!.hash, signedAt: at(5000), coordinator })
  const rechained = rows.map((r) => ({ ...r }))
  rechained[0]!.createdAt = at(-60_000)
  let prev = await ledgerGenesisHash(runId)
  for (const r of rechained) { r.prevHash = prev; r.hash = await ledgerEntryHash(r); prev = r.hash }
  assert.deepEqual(await verifyLedger(runId, rechained), { ok: true, rows: 3 }, 'a consistent rewrite agrees with itself')
  assert.match(await checkLedgerHead(runId, rechained, head, coordinator) ?? '', /history was rewritten/)
})

test('an old chain (v1 to v5, times not hashed) still verifies; its times are not pinned', async () => {
  const rows = await chain(2)
  const fields = await acceptedRoundTwo(rows[1]!.hash, '00000000-0000-4000-8000-000000000501', { executor: 'typescript' }, { executor: 'typescript', score: 0.5, creditedCores: 2 })
  rows.push({ seq: 3, ...fields, hash: await ledgerEntryHash(fields) })
  // Exported as the coordinator exports them: every row with its (unhashed) time.
  const old = parseLedgerJson(JSON.stringify(rows.map((r, i) => ({ ...r, createdAt: at(i) }))))
  assert.deepEqual(await verifyLedger(runId, old), { ok: true, rows: 3 })
  assert.deepEqual(await verifyLedger(runId, old.map((r) => ({ ...r, createdAt: at(-86_400_000) }))), { ok: true, rows: 3 }, 'the gap ledger v6 closes, for rows written before it')
  // A run upgraded mid-way: v5 rows, then v6 rows chained onto them.
  assert.deepEqual(await verifyLedger(runId, await timedFrom(rows, 2)), { ok: true, rows: 3 })
})

test('a row re-hashed without its time after a v6 row is refused: rows cannot be downgraded to unpinned times', async () => {
  const rows = await timedFrom(await chain(4), 0)
  // Move row 3's time and re-hash it the v5 way, then re-chain row 4 as v6.
  const downgraded = rows.map((r) => ({ ...r }))
  downgraded[2]!.createdAt = at(-3_600_000)
  downgraded[2]!.hash = await ledgerEntryHash({ ...downgraded[2]!, createdAt: undefined })
  downgraded[3]!.prevHash = downgraded[2]!.hash
  downgraded[3]!.hash = await ledgerEntryHash(downgraded[3]!)
  const v = await verifyLedger(runId, downgraded)
  assert.equal(!v.ok && v.seq, 3)
  assert.match(!v.ok ? v.reason : '', /leaves out its time .* row seq=1 before it hashed its time/)
  // Downgrading every row from the first v6 one agrees with itself; a kept head still catches it.
  const key = await generateKeyPair('Ed25519')
  const coordinator = peerIdFromPrivateKey(key).toString()
  const head = await signLedgerHead(key, { runId, round: 3, seq: 4, rows: 4, hash: rows[3]!.hash, signedAt: at(9000), coordinator })
  const allDowngraded = await timedFrom(rows, 4)
  allDowngraded[2]!.createdAt = at(-3_600_000)
  assert.deepEqual(await verifyLedger(runId, allDowngraded), { ok: true, rows: 4 })
  assert.match(await checkLedgerHead(runId, allDowngraded, head, coordinator) ?? '', /history was rewritten/)
})

test('a createdAt that is not a strict ISO-8601 UTC time with milliseconds is ERR_MALFORMED_LEDGER, and refused by verifyLedger', async () => {
  const rows = await timedFrom(await chain(1), 0)
  for (const bad of ['2026-11-23 10:00:00.007', '2026-11-23T10:00:00Z', '2026-11-23T10:00:00.007+00:00', '2026-02-30T10:00:00.000Z', '2026-11-23T10:00:00.0070Z', 'yesterday', '']) {
    assert.throws(() => parseLedgerJson(JSON.stringify([{ ...rows[0]!, createdAt: bad }])),
      (err: unknown) => (err as { code?: string }).code === 'ERR_MALFORMED_LEDGER' && /0\.createdAt: must be an ISO-8601 UTC time with milliseconds/.test((err as Error).message), bad)
    assert.equal(isLedgerTime(bad), false, bad)
    const v = await verifyLedger(runId, [{ ...rows[0]!, createdAt: bad }])
    assert.match(!v.ok ? v.reason : '', /is not an ISO-8601 UTC time with milliseconds/, bad)
  }
  assert.throws(() => parseLedgerJson(JSON.stringify([{ ...rows[0]!, createdAt: 5 }])), /createdAt/)
  assert.equal(isLedgerTime('2026-11-23T10:00:00.007Z'), true)
})
