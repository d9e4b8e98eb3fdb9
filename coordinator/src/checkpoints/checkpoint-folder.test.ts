import { afterAll, beforeAll, test } from 'vitest'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { SelectQueryNode, TableNode, sql } from 'kysely'
import type { Kysely, KyselyPlugin, RootOperationNode } from 'kysely'
import { sha256Hex } from '@barnraise/protocol'
import { catalogTokenizer } from '@barnraise/datasets'
import type { Database } from '../db/schema.ts'
import { DiskBlobStore } from '../blobs/blob-store.ts'
import { storeBlob } from '../blobs/blob-records.ts'
import { createRun } from '../runs/runs.ts'
import { openTestStore } from '../../../test/support/store.ts'
import { CHECKPOINT_PAGE_MAX, FolderCache, checkpointFolder, roundCheckpointFolder, runCheckpointFolders } from './checkpoint-folder.ts'
import type { CheckpointFolder } from './checkpoint-folder.ts'
import { listRunCheckpoints } from './run-checkpoints.ts'

let db: Kysely<Database>
let blobs: DiskBlobStore
let cleanup: () => Promise<void>

beforeAll(async () => {
  const store = await openTestStore('folders')
  db = store.db
  blobs = store.blobs
  cleanup = store.close
})
afterAll(async () => { await cleanup() })

const readme = (f: { files: Array<{ name: string, bytes?: Uint8Array }> }): string =>
  new TextDecoder().decode(f.files.find((x) => x.name === 'README.md')!.bytes)

test('a folder is built once and reused until its checkpoint row or its run\'s ledger changes', async () => {
  const { id: runId } = await createRun({ db, blobs }, { name: 'cached folders', model: { preset: 'tiny' }, rounds: 5, recipe: { seqLen: 16, batchSize: 2 } })
  const sha = await storeBlob(db, blobs, randomBytes(4096), 'checkpoint', { runId, round: 1 })
  await db.insertInto('checkpoints').values({ sha256: sha, run_id: runId, round: 1, tokens_seen: 640, val_loss: 4.5 }).execute()
  const cache = new FolderCache()
  const deps = { db, blobs, folderCache: cache }

  const first = await checkpointFolder(deps, sha)
  const again = await checkpointFolder(deps, sha)
  assert.ok(first !== undefined)
  assert.equal(again, first, 'the second request gets the folder built for the first')
  assert.equal(cache.builds, 1)
  // Listing the run builds its other folder (round 0) and reuses this one.
  const listed = (await runCheckpointFolders(deps, runId))?.folders
  assert.equal(listed?.length, 2)
  assert.equal(listed?.[1], first)
  assert.equal(cache.builds, 2)

  // The initial checkpoint's loss arriving later changes the row: the card is rebuilt with it.
  await db.updateTable('checkpoints').set({ val_loss: 3.25 }).where('sha256', '=', sha).execute()
  const withLoss = await checkpointFolder(deps, sha)
  assert.notEqual(withLoss, first)
  assert.equal(cache.builds, 3)
  assert.match(readme(withLoss!), /3\.25/)
  assert.notEqual(withLoss!.files.find((f) => f.name === 'README.md')!.etag, first.files.find((f) => f.name === 'README.md')!.etag)

  // A new ledger row can change the card's contributors: the run's entry and its folders go stale.
  await db.insertInto('ledger').values({
    run_id: runId, round: 1, peer_id: '12D3KooWLedgerRowForTheCache', tokens: 640, compute_seconds: 12,
    outcome: 'accepted', prev_hash: '0'.repeat(64), hash: '1'.repeat(64)
  }).execute()
  const afterLedger = await checkpointFolder(deps, sha)
  assert.notEqual(afterLedger, withLoss)
  assert.equal(cache.builds, 4)
  assert.match(readme(afterLedger!), /12D3KooWLedgerRowForTheCache|unknown lab/)
  assert.equal(await checkpointFolder(deps, sha), afterLedger, 'and is reused again after')
  assert.equal(cache.builds, 4)
})

test('a long run\'s checkpoints are listed a page at a time: oldest after a round, or the newest; never more than a page', async () => {
  const { id: runId } = await createRun({ db, blobs }, { name: 'paged', model: { preset: 'tiny' }, rounds: 2000, recipe: { seqLen: 16, batchSize: 2 }, retention: { keepEvery: 2 } })
  const rounds = CHECKPOINT_PAGE_MAX + 20
  // Rows only: their weights are not in the store, so no model card is rendered for them.
  await db.insertInto('checkpoints').values(Array.from({ length: rounds }, (_, i) => ({
    sha256: randomBytes(32).toString('hex'), run_id: runId, round: i + 1, tokens_seen: (i + 1) * 10, val_loss: 5, pruned_at: (i + 1) % 2 === 1 ? new Date() : null
  }))).execute()
  const deps = { db, blobs }
  const first = (await runCheckpointFolders(deps, runId))!
  assert.equal(first.folders.length, CHECKPOINT_PAGE_MAX, 'the default page is the most a listing builds')
  assert.deepEqual([first.folders[0]!.round, first.folders.at(-1)!.round, first.more], [0, CHECKPOINT_PAGE_MAX - 1, true])
  const rest = (await runCheckpointFolders(deps, runId, { order: 'oldest', after: first.folders.at(-1)!.round, limit: 10_000 }))!
  assert.deepEqual(rest.folders.map((f) => f.round), Array.from({ length: rounds + 1 - CHECKPOINT_PAGE_MAX }, (_, i) => CHECKPOINT_PAGE_MAX + i), 'the next page starts after the last, and a limit past the most is cut to it')
  assert.equal(rest.more, false)

  const page = await listRunCheckpoints(deps, runId, 5)
  assert.deepEqual(page.checkpoints.map((c) => c.round), [rounds, rounds - 1, rounds - 2, rounds - 3, rounds - 4], 'the run page gets the newest, newest first')
  assert.deepEqual([page.total, page.pruned], [rounds + 1, rounds / 2], 'and the counts of every checkpoint and every pruned one')
  assert.equal((await listRunCheckpoints(deps, runId)).checkpoints.length, 50)
})

/** Rows of checkpoints for these rounds, with blob rows saying their weights' size: available folders without weights to write. */
async function checkpointRows (runId: string, rounds: number[]): Promise<void> {
  const rows = rounds.map((round) => ({ sha256: randomBytes(32).toString('hex'), run_id: runId, round, tokens_seen: round * 10, val_loss: 5 - round / 100 }))
  await db.insertInto('blobs').values(rows.map((r) => ({ sha256: r.sha256, size: 4096, kind: 'checkpoint' as const, meta: JSON.stringify({}) }))).execute()
  await db.insertInto('checkpoints').values(rows).execute()
}

/** One report on the run's ledger (its hash chain is not what these tests read). */
async function ledgerRow (runId: string, round: number, outcome: 'accepted' | 'refused', by: { peer?: string, node?: string, organization?: string, tokens?: number } = {}): Promise<void> {
  await db.insertInto('ledger').values({
    run_id: runId, round, peer_id: by.peer ?? '12D3KooWSomePeerOfTheLedger', node_id: by.node ?? null, organization_id: by.organization ?? null,
    tokens: by.tokens ?? 100, compute_seconds: 7, outcome, prev_hash: '0'.repeat(64), hash: randomBytes(32).toString('hex')
  }).execute()
}

const isLedgerSum = (node: RootOperationNode): boolean => SelectQueryNode.is(node) && node.groupBy !== undefined &&
  node.from?.froms.some((f) => TableNode.is(f) && f.table.identifier.name === 'ledger') === true

/** The test database, counting the queries that sum a run's ledger: what rebuilding a run's contributors costs. */
function countingLedgerSums (): { db: Kysely<Database>, sums: () => number } {
  let sums = 0
  const plugin: KyselyPlugin = {
    transformQuery: ({ node }) => { if (isLedgerSum(node)) sums++; return node },
    transformResult: async ({ result }) => await Promise.resolve(result)
  }
  return { db: db.withPlugin(plugin), sums: () => sums }
}

/** Everything a folder serves, byte for byte. */
const served = (f: CheckpointFolder | undefined): unknown => f === undefined ? undefined : { tar: [f.tarName, f.tarSize, f.tarEtag], files: f.files.map((x) => [x.name, x.size, x.etag, x.contentType, x.blob, x.bytes === undefined ? undefined : Buffer.from(x.bytes).toString('hex')]) }

const tinyRun = { model: { preset: 'tiny' as const }, rounds: 100, recipe: { seqLen: 16, batchSize: 2 } }

test('a run\'s config and tokenizer files are made once and shared by every folder of it, whatever its ledger does', async () => {
  const { id: runId } = await createRun({ db, blobs }, { name: 'shared text files', ...tinyRun })
  await sql`update runs set spec = jsonb_set(spec, '{tokenizer}', '"gpt2"') where id = ${runId}`.execute(db)
  const rounds = Array.from({ length: 24 }, (_, i) => i + 1)
  await checkpointRows(runId, rounds)
  const cache = new FolderCache()
  const deps = { db, blobs, folderCache: cache }
  const held = new Set<Uint8Array>()
  for (const round of rounds) {
    // Any report on the run, accepted or refused, moves its ledger on.
    await ledgerRow(runId, round, round % 2 === 0 ? 'accepted' : 'refused')
    const folder = await roundCheckpointFolder(deps, runId, round)
    assert.equal(folder?.status, 'available')
    for (const f of folder.files) if (f.bytes !== undefined && f.name !== 'README.md') held.add(f.bytes)
  }
  assert.equal(held.size, 4, `${rounds.length} folders over ${rounds.length} ledger versions hold one copy of the text files`)
  assert.deepEqual([...held].map((b) => b.byteLength > 1_000_000), [false, true, false, false], 'config.json, gpt2\'s 2 MB tokenizer.json and two small files')
  assert.equal(cache.textBuilds, 1)
  assert.equal(cache.texts.bytes, [...held].reduce((n, b) => n + b.byteLength, 0), 'and the text budget counts that copy')
  assert.ok(cache.folders.bytes < rounds.length * 16_384, `the folders' own bytes are their cards: ${cache.folders.bytes}`)
})

test('concurrent requests wait on one build, and a new ledger row costs one read of the rows after the last', async () => {
  const { id: runId } = await createRun({ db, blobs }, { name: 'concurrent folders', ...tinyRun })
  await checkpointRows(runId, [1, 2])
  for (let i = 0; i < 20; i++) await ledgerRow(runId, 1, 'accepted', { peer: `12D3KooWEarlierPeer${i % 4}` })
  const counted = countingLedgerSums()
  const cache = new FolderCache()
  const deps = { db: counted.db, blobs, folderCache: cache }
  const ask = async (round: number): Promise<Array<CheckpointFolder | undefined>> => await Promise.all(Array.from({ length: 16 }, async () => await roundCheckpointFolder(deps, runId, round)))

  const first = await ask(2)
  assert.ok(first.every((f) => f === first[0] && f?.status === 'available'))
  assert.deepEqual([counted.sums(), cache.runBuilds, cache.textBuilds, cache.builds], [1, 1, 1, 1], '16 requests on a cold cache: one ledger sum, one run read, one text set, one folder')

  await ledgerRow(runId, 2, 'accepted', { peer: '12D3KooWLatePeer' })
  const after = await ask(2)
  assert.ok(after.every((f) => f === after[0] && f !== first[0]))
  assert.match(new TextDecoder().decode(after[0]!.files.find((f) => f.name === 'README.md')!.bytes), /LatePeer/)
  assert.deepEqual([counted.sums(), cache.runBuilds, cache.textBuilds, cache.builds], [2, 1, 1, 2], 'after one ledger row, 16 requests: one read of the new row, one folder; the run and its text files are as they were')
})

test('a refused report rebuilds nothing; accepted ones are added to the cached sums, which match a fresh build byte for byte', async () => {
  const { id: runId } = await createRun({ db, blobs }, { name: 'incremental work', ...tinyRun })
  await checkpointRows(runId, [1, 2, 3])
  const organization = (await db.insertInto('organizations').values({ name: 'Incremental Lab' }).returning('id').executeTakeFirstOrThrow()).id
  const node = (await db.insertInto('nodes').values({ peer_id: '12D3KooWNamedNodeOfTheLab', organization_id: organization, name: 'named-node', hardware: JSON.stringify({}), agent_version: 't', first_seen_at: new Date(), last_seen_at: new Date() }).returning('id').executeTakeFirstOrThrow()).id
  const named = { peer: '12D3KooWNamedNodeOfTheLab', node, organization }
  await ledgerRow(runId, 1, 'accepted', { ...named, tokens: 640 })
  const cache = new FolderCache()
  const deps = { db, blobs, folderCache: cache }
  const first = await roundCheckpointFolder(deps, runId, 2)

  await ledgerRow(runId, 2, 'refused', named)
  assert.equal(await roundCheckpointFolder(deps, runId, 2), first, 'a refused report changes no card')
  assert.equal(cache.builds, 1)

  await ledgerRow(runId, 2, 'accepted', { peer: '12D3KooWAnonymousPeerXYZW', tokens: 320 })
  await ledgerRow(runId, 3, 'accepted', { ...named, tokens: 5000 })
  await ledgerRow(runId, 2, 'accepted', { ...named, tokens: 64 })
  const updated = await roundCheckpointFolder(deps, runId, 2)
  assert.equal(cache.builds, 2)
  const card = readme(updated!)
  assert.match(card, /\| named-node \| Incremental Lab \| 704 \|/, 'rounds 1 and 2 of the named node, summed')
  assert.match(card, /\| PeerXYZW \| unknown lab \| 320 \|/)
  assert.doesNotMatch(card, /5,000|5000/, 'round 3 is after this checkpoint')
  for (const round of [1, 2, 3]) {
    const cached = served(await roundCheckpointFolder(deps, runId, round))
    assert.deepEqual(cached, served(await roundCheckpointFolder({ db, blobs, folderCache: new FolderCache() }, runId, round)), `round ${round}: as a fresh cache builds it`)
    assert.deepEqual(cached, served(await roundCheckpointFolder({ db, blobs }, runId, round)), `round ${round}: as an uncached request builds it`)
  }

  // Names are read afresh whenever the ledger moves, as a full rebuild would.
  await db.updateTable('nodes').set({ name: 'renamed-node' }).where('id', '=', node).execute()
  await ledgerRow(runId, 3, 'refused', named)
  assert.match(readme((await roundCheckpointFolder(deps, runId, 2))!), /\| renamed-node \| Incremental Lab \| 704 \|/)
})

test('the cache keeps to its byte budgets, and lets go of a text set\'s folders with the set', async () => {
  const { id: byteRun } = await createRun({ db, blobs }, { name: 'byte budget', ...tinyRun })
  const { id: bpeRun } = await createRun({ db, blobs }, { name: 'bpe budget', ...tinyRun })
  await sql`update runs set spec = jsonb_set(spec, '{tokenizer}', '"gpt2-1k"') where id = ${bpeRun}`.execute(db)
  const rounds = Array.from({ length: 12 }, (_, i) => i + 1)
  await checkpointRows(byteRun, rounds)
  await checkpointRows(bpeRun, rounds)
  const textBytes = async (runId: string): Promise<number> => {
    const probe = new FolderCache()
    await roundCheckpointFolder({ db, blobs, folderCache: probe }, runId, 1)
    return probe.texts.bytes
  }
  const [byteTexts, bpeTexts] = [await textBytes(byteRun), await textBytes(bpeRun)]

  const folderBytes = 20_000
  const small = new FolderCache({ folderBytes })
  for (const round of rounds) {
    await roundCheckpointFolder({ db, blobs, folderCache: small }, byteRun, round)
    assert.ok(small.folders.bytes <= folderBytes, `${small.folders.bytes} bytes of folders kept, over the ${folderBytes} allowed`)
  }
  assert.ok(small.folders.size >= 1 && small.folders.size < rounds.length, `${small.folders.size} folders kept`)

  // Room for one text set: asking for the other run's folders drops the first set and its folders.
  const one = new FolderCache({ textBytes: Math.max(byteTexts, bpeTexts) })
  const oneDeps = { db, blobs, folderCache: one }
  for (const round of [1, 2, 3]) await roundCheckpointFolder(oneDeps, byteRun, round)
  assert.deepEqual([one.folders.size, one.texts.size], [3, 1])
  const bpeFolder = await roundCheckpointFolder(oneDeps, bpeRun, 1)
  assert.deepEqual([one.folders.size, one.texts.size, one.texts.bytes], [1, 1, bpeTexts])
  assert.equal([...one.folders.values()][0]?.folder, bpeFolder, 'the folder kept is the one whose text files are kept')

  // A text set over the budget on its own is served, never kept, and neither are its folders.
  const none = new FolderCache({ textBytes: 1 })
  const uncached = await roundCheckpointFolder({ db, blobs, folderCache: none }, byteRun, 1)
  assert.deepEqual(served(uncached), served(await roundCheckpointFolder({ db, blobs }, byteRun, 1)))
  await roundCheckpointFolder({ db, blobs, folderCache: none }, byteRun, 1)
  assert.deepEqual([none.texts.size, none.folders.size, none.textBuilds, none.builds], [0, 0, 2, 2])
})

test('a build that fails is not kept: the next request builds again', async () => {
  const tokenizerJson = new TextEncoder().encode(JSON.stringify(catalogTokenizer('gpt2-1k').huggingFaceFiles(64).get('tokenizer.json')))
  const name = `sha256:${sha256Hex(tokenizerJson)}`
  const { id: runId } = await createRun({ db, blobs }, { name: 'uploaded tokenizer later', ...tinyRun })
  await sql`update runs set spec = jsonb_set(spec, '{tokenizer}', to_jsonb(${name}::text)) where id = ${runId}`.execute(db)
  await checkpointRows(runId, [1])
  const cache = new FolderCache()
  const deps = { db, blobs, folderCache: cache }
  await assert.rejects(roundCheckpointFolder(deps, runId, 1), /no uploaded tokenizer/)
  await assert.rejects(roundCheckpointFolder(deps, runId, 1), /no uploaded tokenizer/)
  assert.deepEqual([cache.textBuilds, cache.texts.size], [2, 0])
  await storeBlob(db, blobs, tokenizerJson, 'tokenizer', {})
  const folder = await roundCheckpointFolder(deps, runId, 1)
  assert.equal(folder?.files.find((f) => f.name === 'tokenizer.json')?.size, new TextEncoder().encode(JSON.stringify(JSON.parse(new TextDecoder().decode(tokenizerJson)), null, 2) + '\n').byteLength)
  assert.deepEqual([cache.textBuilds, cache.texts.size], [3, 1])
})

test('a busy install\'s runs all stay cached: asking for each of 65 runs in turn rebuilds none the second time', async () => {
  const { id: first } = await createRun({ db, blobs }, { name: 'many runs 0', ...tinyRun })
  // Rows only, copies of the first (createRun writes an initial checkpoint each time).
  const copies = await sql<{ id: string }>`insert into runs select (jsonb_populate_record(null::runs, to_jsonb(r) || jsonb_build_object('id', gen_random_uuid(), 'name', 'many runs ' || g))).* from runs r, generate_series(1, 64) g where r.id = ${first} returning id`.execute(db)
  const runIds = [first, ...copies.rows.map((r) => r.id)]
  await sql`insert into checkpoints (sha256, run_id, round, tokens_seen, val_loss) select c.sha256, r, c.round, c.tokens_seen, c.val_loss from checkpoints c, unnest(${copies.rows.map((r) => r.id)}::uuid[]) r where c.run_id = ${first}`.execute(db)
  const counted = countingLedgerSums()
  const cache = new FolderCache()
  const deps = { db: counted.db, blobs, folderCache: cache }
  for (const id of runIds) assert.equal((await roundCheckpointFolder(deps, id, 0))?.status, 'available')
  const before = [counted.sums(), cache.runBuilds, cache.builds, cache.textBuilds]
  assert.deepEqual(before, [65, 65, 65, 1])
  for (const id of runIds) await roundCheckpointFolder(deps, id, 0)
  assert.deepEqual([counted.sums(), cache.runBuilds, cache.builds, cache.textBuilds], before)
})
