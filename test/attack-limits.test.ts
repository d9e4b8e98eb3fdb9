import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Coordinator } from '@barnraise/coordinator'
import { tempDir } from './support/cluster.ts'
import { sessionClient, sessionClientWithCookie } from './support/session-client.ts'
import { catalogTokenizer } from '@barnraise/datasets'
import { refused } from './support/refusal.ts'

type Client = ReturnType<typeof sessionClient>

const TINY_RUN = { model: { preset: 'tiny' }, rounds: 3, recipe: { seqLen: 16, batchSize: 2 } }

/** A few KiB of varied text: enough for a dataset upload to shard. */
function corpus (kib: number, seed: string): string {
  const words = ['barn', 'raise', 'gradient', 'round', 'lab', 'node', 'token', 'shard', 'ledger', 'pledge', seed]
  let text = ''
  for (let i = 0; text.length < kib * 1024; i++) text += `${words[(i * 7 + i % 5) % words.length]}${i % 13 === 0 ? '.\n' : ' '}`
  return text
}

/** Opens the live-changes stream (SSE) as a browser's EventSource would; the caller aborts it. */
async function openStream (base: string, signal: AbortSignal): Promise<{ status: number, first: string }> {
  const res = await fetch(new URL('trpc/live.changes', base), { headers: { accept: 'text/event-stream' }, signal })
  const reader = res.body!.getReader()
  const { value } = await reader.read()
  return { status: res.status, first: new TextDecoder().decode(value ?? new Uint8Array()) }
}

describe('limits that keep strangers from exhausting a coordinator', () => {
  let coordinator: Coordinator
  let organizer: Client
  let organizerCookie: () => string
  beforeAll(async () => {
    coordinator = await Coordinator.start({
      dataDir: join(await tempDir('attack-limits'), 'install'),
      httpPort: 0,
      p2pPort: 0,
      openOrganizing: true,
      listenerLimits: { perAddress: 3 },
      rates: { signUpsPerHour: 4 },
      limits: { maxOpenRuns: 2, datasetQuotaBytes: 48 * 1024 }
    })
    const admin = sessionClient(coordinator.url)
    await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', setupCode: coordinator.setupCode! })
    const withCookie = sessionClientWithCookie(coordinator.url)
    organizer = withCookie.client
    organizerCookie = withCookie.cookie
    await organizer.auth.signUp.mutate({ email: 'olu@runs.test', password: 'olu-password-1', displayName: 'Olu', role: 'organizer' })
  })
  afterAll(async () => { await coordinator.stop() })

  const count = async (table: 'users' | 'runs' | 'blobs'): Promise<number> =>
    Number((await coordinator.database.db.selectFrom(table).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)

  test('live-update streams are capped per address; a closed one frees its place', async () => {
    const controllers = [new AbortController(), new AbortController(), new AbortController()]
    for (const c of controllers) {
      const opened = await openStream(coordinator.url, c.signal)
      assert.equal(opened.status, 200)
    }
    assert.equal(coordinator.changes.listeners('127.0.0.1') + coordinator.changes.listeners('::ffff:127.0.0.1'), 3)
    const extra = new AbortController()
    const over = await openStream(coordinator.url, extra.signal)
    extra.abort()
    assert.ok(over.status === 429 || /live streams are already open/.test(over.first), `the fourth stream is refused: ${over.status} ${over.first.slice(0, 200)}`)
    assert.match(over.first, /live streams are already open from your address \(at most 3\)/)
    controllers[0]!.abort()
    // The server notices the hang-up asynchronously.
    for (let i = 0; i < 50 && coordinator.changes.listeners() > 2; i++) await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(coordinator.changes.listeners(), 2)
    const again = new AbortController()
    assert.equal((await openStream(coordinator.url, again.signal)).status, 200)
    for (const c of [...controllers, again]) c.abort()
  })

  test('sign-ups from one address are rate-limited (429 with Retry-After), and a refused one writes nothing', async () => {
    // Two sign-ups (the admin, the organizer) were counted already; the limit is four an hour.
    for (let i = 0; i < 2; i++) {
      await sessionClient(coordinator.url).auth.signUp.mutate({ email: `fan${i}@fans.test`, password: 'fan-password-1', displayName: `Fan ${i}`, role: 'funder' })
    }
    const before = await count('users')
    const res = await fetch(new URL('trpc/auth.signUp', coordinator.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'bot@spam.test', password: 'bot-password-1', displayName: 'Bot', role: 'funder' })
    })
    assert.equal(res.status, 429)
    assert.ok(Number(res.headers.get('retry-after')) > 0, 'Retry-After says when')
    assert.match(await res.text(), /too many sign-ups from this address/)
    assert.equal(await count('users'), before)
  })

  test('an organizer holds at most the install\'s number of unfinished runs; stopping one makes room', async () => {
    const first = await organizer.runs.create.mutate({ spec: { ...TINY_RUN, name: 'first' } })
    await organizer.runs.create.mutate({ spec: { ...TINY_RUN, name: 'second' } })
    const before = await count('runs')
    const third = await refused(organizer.runs.create.mutate({ spec: { ...TINY_RUN, name: 'third' } }))
    assert.equal(third.code, 'FORBIDDEN')
    assert.equal(third.appCode, 'ERR_QUOTA_EXCEEDED')
    assert.match(third.message, /2 unfinished runs .* allows 2 per organizer \(--max-open-runs\)/)
    assert.equal(await count('runs'), before, 'no run row was written')
    await organizer.runs.setStatus.mutate({ id: first.id, action: 'stop' })
    await organizer.runs.create.mutate({ spec: { ...TINY_RUN, name: 'third' } })
    assert.equal(await count('runs'), before + 1)
  })

  test('dataset uploads stay under the install\'s quota, and a refused upload stores no shard', async () => {
    const small = await organizer.runs.uploadDataset.mutate({ name: 'small', files: [{ name: 'a.txt', text: corpus(16, 'small') }] })
    assert.ok(small.train.length > 0)
    const blobsBefore = await count('blobs')
    const big = await refused(organizer.runs.uploadDataset.mutate({ name: 'big', files: [{ name: 'b.txt', text: corpus(64, 'big') }] }))
    assert.equal(big.appCode, 'ERR_QUOTA_EXCEEDED')
    assert.match(big.message, /this upload makes [\d.]+ KiB of shards, and the coordinator's dataset quota \(48\.0 KiB, --dataset-quota-mb\) has [\d.]+ KiB left/)
    assert.equal(await count('blobs'), blobsBefore)
    // An uploaded tokenizer.json counts against the same quota.
    const tokenizer = JSON.stringify(catalogTokenizer('gpt2').huggingFaceFiles(1024).get('tokenizer.json'))
    const res = await fetch(new URL('api/tokenizers', coordinator.url), { method: 'PUT', headers: { cookie: organizerCookie(), 'content-type': 'application/json' }, body: tokenizer })
    assert.equal(res.status, 413)
    assert.match(((await res.json()) as { error: string }).error, /this tokenizer is [\d.]+ (KiB|MiB), and the coordinator's dataset quota \(48\.0 KiB, --dataset-quota-mb\) has [\d.]+ KiB left/)
    assert.equal(await count('blobs'), blobsBefore)
  })
})
