import { test } from 'vitest'
import assert from 'node:assert/strict'
import { openDatabase } from '../db/open-database.ts'
import { CoordinatorError } from '../errors.ts'
import { createEnrollmentToken } from './enrollment-tokens.ts'
import { createOrganization } from './organizations.ts'
import { nameKey } from './name-key.ts'
import { enrollNode, revokeNode } from './nodes.ts'

const hardware = { hostname: 'h', platform: 'linux', arch: 'x64', cpuModel: 'cpu', cpuCores: 2, memoryBytes: 1, gpus: [] }

test('a lab enrolls at most its cap of unrevoked nodes: a new one past it is refused with nothing written; re-joins, revocations and other labs are unaffected', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  try {
    const lab = await createOrganization(db, 'Lab A')
    const other = await createOrganization(db, 'Lab B')
    const token = (await createEnrollmentToken(db, { organizationId: lab.id, limits: { maxUses: 10 } })).token
    const otherToken = (await createEnrollmentToken(db, { organizationId: other.id, limits: { maxUses: 10 } })).token
    const options = { maxNodesPerOrganization: 2 }
    const join = async (peer: string, t: string | undefined = token): Promise<string> =>
      (await enrollNode(db, peer, { type: 'enroll', agentVersion: '1', hardware, ...(t !== undefined ? { token: t } : {}) }, options)).nodeId
    const first = await join('peer-1')
    await join('peer-2')
    const refused = await join('peer-3').then(() => undefined, (err: unknown) => err)
    assert.ok(refused instanceof CoordinatorError && refused.code === 'ERR_QUOTA_EXCEEDED', String(refused))
    assert.match(refused.message, /already has 2 enrolled nodes, the most this coordinator allows one lab \(2, --max-nodes-per-lab\); a lab admin can revoke/)
    const uses = async (): Promise<number> => (await db.selectFrom('enrollment_tokens').select('used_count').where('organization_id', '=', lab.id).executeTakeFirstOrThrow()).used_count
    assert.equal(await uses(), 2, 'the refused join spent no token use')
    assert.equal(await db.selectFrom('nodes').select('id').where('peer_id', '=', 'peer-3').executeTakeFirst(), undefined)
    assert.equal(await join('peer-1', undefined), first, 'a node already enrolled re-joins at the cap')
    await join('peer-b1', otherToken)
    // A revoked node frees its place.
    await revokeNode(db, first, lab.id)
    await join('peer-3')
    assert.equal(await uses(), 3)
  } finally {
    await database.close()
  }
})

test('a name whose numbered forms the lab already holds gets the peer id\'s suffix after a few lookups, then all of it; past that, a new node is refused and a re-join keeps its name', async () => {
  const database = await openDatabase({ dataDir: 'memory://' })
  const db = database.db
  try {
    const lab = await createOrganization(db, 'Lab A')
    const token = (await createEnrollmentToken(db, { organizationId: lab.id, limits: { maxUses: 10 } })).token
    const join = async (peer: string, name: string, t: string | undefined = token): Promise<string> => {
      const { nodeId } = await enrollNode(db, peer, { type: 'enroll', agentVersion: '1', hardware, name, ...(t !== undefined ? { token: t } : {}) })
      return (await db.selectFrom('nodes').select('name').where('id', '=', nodeId).executeTakeFirstOrThrow()).name
    }
    // The lab holds "box" and box-2 … box-200, more than the numbered forms looked up.
    const now = new Date()
    const names = ['box', ...Array.from({ length: 199 }, (_, i) => `box-${i + 2}`)]
    await db.insertInto('nodes').values(names.map((name, i) => ({
      peer_id: `held-${i}`, organization_id: lab.id, name, name_key: nameKey(name), hardware: JSON.stringify(hardware), agent_version: '1', first_seen_at: now, last_seen_at: now
    }))).execute()
    const peer = '12D3KooWNewPeerWithALongIdentifierAbcdefgh'
    assert.equal(await join(peer, 'box'), 'box-Abcdefgh', 'the peer id\'s last 8 characters')
    assert.equal(await join('12D3KooWOtherPeerABCDEFGH', 'box'), 'box-12D3KooWOtherPeerABCDEFGH', 'its suffix taken in other case: the whole peer id')
    // Every form taken (only the lab's own nodes can do that): a new node must pick another name.
    await db.insertInto('nodes').values(['box-zzzzzzzz', 'box-peer-zzzzzzzz'].map((name, i) => ({
      peer_id: `more-${i}`, organization_id: lab.id, name, name_key: nameKey(name), hardware: JSON.stringify(hardware), agent_version: '1', first_seen_at: now, last_seen_at: now
    }))).execute()
    const refused = await join('peer-zzzzzzzz', 'box').then(() => undefined, (err: unknown) => err)
    assert.ok(refused instanceof CoordinatorError && refused.code === 'ERR_NAME_TAKEN', String(refused))
    assert.match(refused.message, /join with another --name/)
    // A re-join asking a name it cannot have keeps the one it has.
    assert.equal(await join('peer-yyyyyyyy', 'solo'), 'solo')
    await db.insertInto('nodes').values(['box-yyyyyyyy', 'box-peer-yyyyyyyy'].map((name, i) => ({
      peer_id: `yet-more-${i}`, organization_id: lab.id, name, name_key: nameKey(name), hardware: JSON.stringify(hardware), agent_version: '1', first_seen_at: now, last_seen_at: now
    }))).execute()
    assert.equal(await join('peer-yyyyyyyy', 'box', undefined), 'solo')
    assert.equal(await join(peer, 'box', undefined), 'box-Abcdefgh', 'its own name is free to it')
  } finally {
    await database.close()
  }
})
