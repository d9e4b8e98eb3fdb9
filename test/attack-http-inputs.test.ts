// Hostile input at the HTTP edge that used to escape as a 500 or change state before a refusal:
// a dataset id that is not a UUID, a checkpoint round past Postgres's integers, and a first-admin
// sign-up refused after it had spent the only setup code.
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { Coordinator } from '@barnraise/coordinator'
import type { Logger } from '../coordinator/src/log.ts'
import { createOrganization } from '../coordinator/src/nodes/organizations.ts'
import { tempDir } from './support/cluster.ts'
import { sessionClientWithCookie } from './support/session-client.ts'
import { refused } from './support/refusal.ts'
import { tinyRunSpec } from './support/runs.ts'
import { REPO_ROOT } from './support/processes.ts'

/** A logger that keeps what the coordinator logs as an error: a hostile request must add none. */
function errorCollector (errors: string[]): Logger {
  const log: Logger = { info: () => {}, warn: () => {}, error: (msg) => { errors.push(msg) }, child: () => log }
  return log
}

test('a first-admin sign-up refused for its organization name leaves the setup code usable', async () => {
  const coordinator = await Coordinator.start({ dataDir: join(await tempDir('attack-setup-code'), 'install'), httpPort: 0, p2pPort: 0, log: errorCollector([]) })
  try {
    // The operator's CLI (`token create --org`) can name an organization before any admin exists.
    await createOrganization(coordinator.database.db, 'Hilltop Lab')
    const code = coordinator.setupCode!
    const admin = sessionClientWithCookie(coordinator.url)
    const taken = await refused(admin.client.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', organization: 'Hilltop Lab', setupCode: code }))
    assert.equal(taken.appCode, 'ERR_NAME_TAKEN')
    assert.equal(await admin.client.auth.me.query(), null, 'nobody was signed in')
    // The same code, with an organization of its own: the refusal above spent nothing.
    await admin.client.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', organization: 'Root Lab', setupCode: code })
    assert.ok((await admin.client.auth.me.query())?.roles.includes('admin'))
    // Spent by the sign-up that made the admin.
    const again = sessionClientWithCookie(coordinator.url)
    const reused = await refused(again.client.auth.signUp.mutate({ email: 'eve@evil.test', password: 'eve-password-1', displayName: 'Eve', role: 'funder', setupCode: code }))
    assert.equal(reused.code, 'CONFLICT')
  } finally {
    await coordinator.stop()
  }
})

describe('hostile input at the HTTP edge', () => {
  let coordinator: Coordinator
  const errors: string[] = []
  let admin: ReturnType<typeof sessionClientWithCookie>

  beforeAll(async () => {
    coordinator = await Coordinator.start({ dataDir: join(await tempDir('attack-http-inputs'), 'install'), httpPort: 0, p2pPort: 0, log: errorCollector(errors) })
    admin = sessionClientWithCookie(coordinator.url)
    await admin.client.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', setupCode: coordinator.setupCode! })
  })
  afterAll(async () => { await coordinator.stop() })

  test('a dataset upload to an id that is not a lower-case UUID is no upload path: nothing reaches the database', async () => {
    const put = async (id: string): Promise<{ status: number, body: unknown }> => {
      const res = await fetch(new URL(`api/datasets/${id}/file`, coordinator.url), { method: 'PUT', headers: { cookie: admin.cookie(), 'content-range': 'bytes 0-0/1' }, body: 'x' })
      return { status: res.status, body: await res.json() as unknown }
    }
    const before = errors.length
    for (const id of ['-'.repeat(36), '0123456789abcdef0123456789abcdef0123', 'AAAAAAAA-AAAA-4AAA-8AAA-AAAAAAAAAAAA', 'x']) {
      const { status, body } = await put(id)
      // As for any other path that takes no PUT (test/datasets.test.ts: 'not-a-uuid').
      assert.equal(status, 405, `${id}: ${JSON.stringify(body)}`)
    }
    assert.deepEqual(errors.slice(before), [], 'nothing reached the database or the error log')
    // A well-formed id of no dataset is still "not found".
    assert.equal((await put('ffffffff-ffff-4fff-8fff-ffffffffffff')).status, 404)
  })

  test('a document listing asked for a round past what Postgres stores is refused as 400, not a logged 500', async () => {
    // A small uploaded text dataset: runs on uploaded datasets list the documents of each checkpoint.
    const text = gunzipSync(await readFile(join(REPO_ROOT, 'data/corpus/kjv.txt.gz'))).subarray(0, 200_000)
    const created = await admin.client.datasets.create.mutate({ name: 'verses', format: 'text', tokenizer: 'byte', fileName: 'verses.txt', fileBytes: text.length })
    const res = await fetch(new URL(`api/datasets/${created.id}/file`, coordinator.url), { method: 'PUT', headers: { cookie: admin.cookie(), 'content-range': `bytes 0-${text.length - 1}/${text.length}` }, body: text })
    assert.equal(res.status, 200, await res.text())
    const deadline = Date.now() + 120_000
    for (;;) {
      const d = await admin.client.datasets.get.query({ id: created.id })
      if (d.status === 'ready') break
      assert.notEqual(d.status, 'failed', d.error ?? '')
      assert.ok(Date.now() < deadline, `dataset still ${d.status}`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const { id: runId } = await admin.client.runs.create.mutate({ spec: tinyRunSpec({ dataset: { source: 'dataset', id: created.id } }) })
    const docs = (round: string, file = 'documents.json'): URL => new URL(`api/runs/${runId}/${file}?round=${round}`, coordinator.url)
    // The run's first checkpoint is listed.
    const first = await fetch(docs('0'))
    assert.equal(first.status, 200, await first.clone().text())
    await first.arrayBuffer()
    const before = errors.length
    for (const round of ['2147483648', '99999999999', '9007199254740991', '', '1e3', '-1', '0x10']) {
      for (const file of ['documents.json', 'documents.csv']) {
        const answer = await fetch(docs(round, file))
        assert.equal(answer.status, 400, `${file}?round=${round}`)
        const body = await answer.json() as { code: string, error: string }
        assert.equal(body.code, 'ERR_INVALID_INPUT')
        assert.match(body.error, /round must be a whole number from 0 to 2147483647/)
      }
    }
    // The largest integer round is a round like any other: this run has none.
    assert.equal((await fetch(docs('2147483647'))).status, 404)
    assert.deepEqual(errors.slice(before), [], 'nothing was logged as an internal error')
  })
})
