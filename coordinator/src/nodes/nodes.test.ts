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
