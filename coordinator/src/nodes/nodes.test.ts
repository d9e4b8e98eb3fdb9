import { test } from 'vitest'
import assert from 'node:assert/strict'
import { openDatabase } from '../db/open-database.ts'
import { createEnrollmentToken } from './enrollment-tokens.ts'
import { createOrganization } from './organizations.ts'
import { enrollNode } from './nodes.ts'

const hardware = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 2, memoryBytes: 1, gpus: [] }

test('node names are unique within a lab: a taken name gets -2, -3 …; a re-join keeps its own; other labs are not affected', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  try {
    const lab = await createOrganization(db, 'Lab A')
    const other = await createOrganization(db, 'Lab B')
    const token = (await createEnrollmentToken(db, { organizationId: lab.id, limits: { maxUses: 10 } })).token
    const otherToken = (await createEnrollmentToken(db, { organizationId: other.id, limits: { maxUses: 10 } })).token
    const join = async (peer: string, name: string | undefined, t: string | undefined = token): Promise<string> => {
      const { nodeId } = await enrollNode(db, peer, { type: 'enroll', agentVersion: '1', hardware, ...(t !== undefined ? { token: t } : {}), ...(name !== undefined ? { name } : {}) })
      return (await db.selectFrom('nodes').select('name').where('id', '=', nodeId).executeTakeFirstOrThrow()).name
    }
    assert.equal(await join('peer-1', 'gpu-box'), 'gpu-box')
    assert.equal(await join('peer-2', 'gpu-box'), 'gpu-box-2')
    assert.equal(await join('peer-3', 'gpu-box'), 'gpu-box-3')
    assert.equal(await join('peer-4', 'gpu-box-2'), 'gpu-box-2-2', 'a name with a number is not taken apart')
    assert.equal(await join('peer-1', 'gpu-box', undefined), 'gpu-box', 'a re-join under its own name keeps it')
    assert.equal(await join('peer-3', 'gpu-box', undefined), 'gpu-box-3', 'a re-join cannot take another node\'s name')
    assert.equal(await join('peer-5', 'gpu-box', otherToken), 'gpu-box', 'another lab may use the same name')
    assert.equal(await join('peer-6', '100%_x'), '100%_x')
    assert.equal(await join('peer-7', '100%_x'), '100%_x-2', 'LIKE wildcards in a name are matched as text')
    const long = 'n'.repeat(100)
    assert.equal(await join('peer-8', long), long)
    const second = await join('peer-9', long)
    assert.equal(second, `${'n'.repeat(98)}-2`)
    assert.equal(await join('peer-10', second), `${'n'.repeat(98)}-3`, 'a cut name already taken is not handed out again')
  } finally {
    await database.close()
  }
})

test('a lab\'s node names are compared as people read them: case, spacing, compatibility forms and invisible characters make no new name', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  try {
    const lab = await createOrganization(db, 'Lab A')
    const token = (await createEnrollmentToken(db, { organizationId: lab.id, limits: { maxUses: 20 } })).token
    const join = async (peer: string, name: string | undefined, t: string | undefined = token): Promise<{ name: string, key: string }> => {
      const { nodeId } = await enrollNode(db, peer, { type: 'enroll', agentVersion: '1', hardware, ...(t !== undefined ? { token: t } : {}), ...(name !== undefined ? { name } : {}) })
      const row = await db.selectFrom('nodes').select(['name', 'name_key']).where('id', '=', nodeId).executeTakeFirstOrThrow()
      return { name: row.name, key: row.name_key }
    }
    assert.deepEqual(await join('peer-1', 'Trainer'), { name: 'Trainer', key: 'trainer' })
    assert.equal((await join('peer-2', 'trainer')).name, 'trainer-2', 'another case is the same name')
    assert.equal((await join('peer-3', 'train\u200ber')).name, 'train\u200ber-3', 'a zero-width space is the same name')
    assert.equal((await join('peer-4', '\uff34\uff32\uff21\uff29\uff2e\uff25\uff32')).name, '\uff34\uff32\uff21\uff29\uff2e\uff25\uff32-4', 'full-width letters are the same name')
    assert.equal((await join('peer-5', ' Trainer\u00a0')).name, 'Trainer-5', 'spaces around it are the same name, and are not kept')
    assert.equal((await join('peer-6', 'TRAINER-2')).name, 'TRAINER-2-2', 'a suffixed name, in other case, is taken too')
    assert.equal((await join('peer-1', 'TRAINER', undefined)).name, 'TRAINER', 'a re-join may change the case of its own name')
    assert.equal((await join('peer-2', 'Trainer', undefined)).name, 'Trainer-2', 'a re-join cannot take another node\'s name in other case (its own -2 is free to it)')
    // A change of case in a script whose case Postgres may fold differently (a final sigma): the
    // coordinator's key stands, so another node still cannot take the name.
    assert.deepEqual(await join('peer-20', 'Οδός'), { name: 'Οδός', key: 'oδός' }, 'the Greek omicron reads as a Latin o')
    assert.deepEqual(await join('peer-20', 'ΟΔΌΣ', undefined), { name: 'ΟΔΌΣ', key: 'oδός' }, 'a re-join in capitals keeps the exact key')
    assert.equal((await join('peer-21', 'οδός')).name, 'οδός-2')
    const blank = await join('peer-70000000', '\u200b\u2060')
    assert.equal(blank.name, 'node-70000000', 'a name that reads as nothing gets the default name')
    assert.equal((await join('peer-70000000', '\u200b', undefined)).name, 'node-70000000', 'and a re-join with one keeps its name')
    // Cut to fit without splitting a surrogate pair: 99 units ending in half of an emoji's pair.
    const emoji = `${'e'.repeat(97)}\u{1f600}`
    assert.equal((await join('peer-8', emoji)).name, emoji)
    const cutName = (await join('peer-9', emoji)).name
    assert.equal(cutName, `${'e'.repeat(97)}-2`, 'the emoji goes whole, not half of it')
    assert.doesNotMatch(cutName, /[\ud800-\udfff]/u, 'no half of a surrogate pair')
  } finally {
    await database.close()
  }
})
