import { test } from 'vitest'
import assert from 'node:assert/strict'
import { openDatabase } from '../db/open-database.ts'
import { reserveDataRoom, uploadedDataBytes, withDataQuota } from './data-storage.ts'

test('room reserved for a dataset being stored counts as used until released, once, and only on its own database', async () => {
  const a = await openDatabase({ dataDir: 'memory://' })
  const b = await openDatabase({ dataDir: 'memory://' })
  try {
    await a.db.insertInto('blobs').values({ sha256: 'a'.repeat(64), size: 100, kind: 'shard', meta: JSON.stringify({ uploadedBy: 'u' }) }).execute()
    assert.equal(await uploadedDataBytes(a.db), 100)
    const release = await withDataQuota(a.db, async () => reserveDataRoom(a.db, 1000))
    assert.equal(await uploadedDataBytes(a.db), 1100, 'a check made meanwhile sees the room taken')
    assert.equal(await uploadedDataBytes(b.db), 0, 'another install is not affected')
    release()
    release()
    assert.equal(await uploadedDataBytes(a.db), 100, 'released once, whatever the calls')
  } finally {
    await a.close()
    await b.close()
  }
})
