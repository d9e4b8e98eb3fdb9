import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import pg from 'pg'
import type { EnrollRequest, HardwareProfile } from '@barnraise/protocol'
import { CoordinatorClient, RefusedError, createAgentHost, parseCoordinatorAddress } from '@barnraise/node-agent'
import { startCoordinator } from './support/cluster.ts'
import { createRunViaCli, tinyRunSpec } from './support/runs.ts'
import { createTestDatabase } from './support/postgres.ts'
import { waitForUnit } from './support/work-units.ts'

/** The refusal a call ended in; fails if it was answered. */
async function refusal (call: Promise<unknown>): Promise<{ code: string, message: string }> {
  try {
    await call
  } catch (err) {
    assert.ok(err instanceof RefusedError, `a typed refusal, got ${String(err)}`)
    return { code: err.code, message: err.message }
  }
  throw new Error('the request was answered')
}

// Review finding 9: node names, hardware and decline text reached public pages with control and
// bidi characters, and a NUL failed the Postgres write as an internal error.
describe('node free text over a real connection', () => {
  test('a name, hardware or decline with NUL or U+202E is refused as malformed, stores nothing and logs no error; plain text still goes through', async () => {
    const database = await createTestDatabase()
    const env = { DATABASE_URL: database.url, BARNRAISE_LOG: 'info' }
    const coordinator = await startCoordinator({ env })
    const libp2p = await createAgentHost(await generateKeyPair('Ed25519'))
    const peerId = libp2p.peerId.toString()
    const db = new pg.Client({ connectionString: database.url })
    await db.connect()
    try {
      const client = new CoordinatorClient(libp2p, parseCoordinatorAddress(coordinator.multiaddr))
      const token = await coordinator.createToken('Text Lab')
      const hardware: HardwareProfile = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'c', cpuCores: 1, memoryBytes: 2 ** 30, gpus: [] }
      const enroll = (patch: Partial<EnrollRequest>): EnrollRequest => ({ type: 'enroll', agentVersion: '0', hardware, token, ...patch })
      const rejoin = (name: string): EnrollRequest => ({ type: 'enroll', agentVersion: '0', hardware, name })
      const count = async (sql: string, params: unknown[] = []): Promise<number> => Number((await db.query<{ n: string }>(sql, params)).rows[0]!.n)

      // First join: nothing may be written and the one-use token must stay unspent.
      const firstJoins: Array<[string, EnrollRequest, RegExp]> = [
        ['NUL in the name', enroll({ name: 'Lab B\u0000node' }), /^name: must be plain text: character 6 is U\+0000 \(NUL/],
        ['RLO in the name', enroll({ name: 'admin\u202Egnp.exe' }), /^name: must be plain text: character 6 is U\+202E \(right-to-left override/],
        ['CR LF in the name', enroll({ name: 'a\r\nLab B node' }), /^name: .*U\+000D \(carriage return/],
        ['NUL in the CPU model', enroll({ hardware: { ...hardware, cpuModel: 'Xeon\u0000' } }), /^hardware\.cpuModel: .*U\+0000/],
        ['RLO in a GPU name', enroll({ hardware: { ...hardware, gpus: [{ name: 'RTX \u202E0904', memoryMiB: 1024 }] } }), /^hardware\.gpus\.0\.name: .*U\+202E/]
      ]
      for (const [what, request, message] of firstJoins) {
        const r = await refusal(client.enroll(request))
        assert.equal(r.code, 'ERR_MALFORMED_MESSAGE', what)
        assert.match(r.message, message, what)
        assert.match(r.message, /replace them with spaces/, `${what}: says what to do`)
      }
      assert.equal(await count('select count(*) as n from nodes'), 0, 'no node row')
      assert.equal(await count('select coalesce(sum(used_count), 0) as n from enrollment_tokens'), 0, 'the token is unspent')

      // The same token then enrolls the node with a plain name (Unicode letters are plain text).
      const joined = await client.enroll(enroll({ name: 'Лаборатория B 🚀' }))
      assert.equal(joined.rejoined, false)
      assert.deepEqual(joined.workFields, ['executor'], 'the coordinator lists the work-request fields it reads')
      // A re-join may change the name, but not to one with NUL or an override.
      for (const name of ['x\u0000', 'admin\u202Egnp.exe']) {
        const r = await refusal(client.enroll(rejoin(name)))
        assert.equal(r.code, 'ERR_MALFORMED_MESSAGE')
        assert.match(r.message, /^name: must be plain text/)
      }
      assert.deepEqual((await db.query('select name from nodes where peer_id = $1', [peerId])).rows, [{ name: 'Лаборатория B 🚀' }])

      // A decline with such text is refused, the unit stays this node's and the ledger has no row for it.
      await createRunViaCli(coordinator.dataDir, tinyRunSpec({ minNodes: 1, rounds: 2, roundDeadlineSeconds: 120 }), env)
      const unit = await waitForUnit(client)
      assert.ok(unit !== undefined, 'a work unit came')
      const declines: Array<[string, { code: string, message: string }, RegExp]> = [
        ['NUL in the message', { code: 'ERR_OUT_OF_MEMORY', message: 'nul \u0000 here' }, /^decline\.message: must be plain text: character 5 is U\+0000 \(NUL/],
        ['RLO in the message', { code: 'ERR_OUT_OF_MEMORY', message: '\u202Eevil reversed\u202C\n'.repeat(100) }, /^decline\.message: .*U\+202E.*line feeds \(\\n\) and tabs are allowed/],
        ['an escape sequence in the code', { code: 'ERR_\u001b[31mRED', message: 'm' }, /^decline\.code: .*U\+001B \(escape/],
        ['RLO in the code', { code: 'ERR_\u202EMOO', message: 'm' }, /^decline\.code: .*U\+202E/]
      ]
      for (const [what, text, message] of declines) {
        const r = await refusal(client.requestWork({ assignmentId: unit.assignmentId, ...text }))
        assert.equal(r.code, 'ERR_MALFORMED_MESSAGE', what)
        assert.match(r.message, message, what)
      }
      const ledgerRows = async (): Promise<number> => await count('select count(*) as n from ledger where assignment_id = $1', [unit.assignmentId])
      assert.equal(await ledgerRows(), 0, 'no ledger row for a refused decline')
      assert.deepEqual((await db.query('select status from assignments where id = $1', [unit.assignmentId])).rows, [{ status: 'assigned' }])

      // An honest decline, its message on several lines, is recorded as sent.
      const message = 'CUDA out of memory.\n\tTried to allocate 2.00 GiB'
      await client.requestWork({ assignmentId: unit.assignmentId, code: 'ERR_OUT_OF_MEMORY', message })
      assert.deepEqual((await db.query('select reason from ledger where assignment_id = $1', [unit.assignmentId])).rows,
        [{ reason: `ERR_DECLINED: the node declined the unit (ERR_OUT_OF_MEMORY): ${message}` }])

      const logs = coordinator.process.output()
      assert.match(logs, /"msg":"enrollment refused".*"code":"ERR_MALFORMED_MESSAGE"/, 'refusals are logged as warnings')
      assert.doesNotMatch(logs, /"level":"error"/, 'nothing was logged as an internal error')
      assert.doesNotMatch(logs, /ERR_INTERNAL/)
    } finally {
      await db.end()
      await libp2p.stop()
      await coordinator.stop()
      await database.drop()
    }
  })
})
