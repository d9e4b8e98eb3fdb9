import { test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { BLOB_CHUNK_BYTES, JsonStream } from '@barnraise/protocol'
import { createAgentHost } from '@barnraise/node-agent'

// Two real libp2p hosts on loopback (TCP, noise, yamux). yamux grants window as bytes arrive,
// not as they are read, so without JsonStream's pause/resume a reader slower than its link
// piles bytes up until libp2p resets the stream at 4 MiB unread (the spread bench's 20
// simultaneous downloads in one process hit that).
test('a reader slower than its link gets every byte of a 48 MiB transfer: the stream is paused, not reset', async () => {
  const sender = await createAgentHost(await generateKeyPair('Ed25519'), undefined, { listen: ['/ip4/127.0.0.1/tcp/0'] })
  const reader = await createAgentHost(await generateKeyPair('Ed25519'))
  const payload = randomBytes(48 * 1024 * 1024)
  try {
    await sender.handle('/barnraise-test/flood/1.0.0', async (stream) => {
      const out = new JsonStream(stream, BLOB_CHUNK_BYTES)
      for (let i = 0; i < payload.length; i += BLOB_CHUNK_BYTES) await out.writeFrame(payload.subarray(i, i + BLOB_CHUNK_BYTES), 60_000)
      await out.close()
    })
    const stream = await reader.dialProtocol(sender.getMultiaddrs()[0]!, '/barnraise-test/flood/1.0.0')
    let pauses = 0
    const pause = stream.pause.bind(stream)
    stream.pause = () => { pauses++; pause() }
    const incoming = new JsonStream(stream, BLOB_CHUNK_BYTES)
    const hash = createHash('sha256')
    let got = 0
    while (got < payload.length) {
      const frame = await incoming.readFrame(30_000)
      hash.update(frame)
      got += frame.byteLength
      // A busy reader: it falls behind the loopback link at once.
      if (got % (4 * BLOB_CHUNK_BYTES) === 0) await sleep(20)
    }
    assert.equal(got, payload.length)
    assert.equal(hash.digest('hex'), createHash('sha256').update(payload).digest('hex'))
    assert.ok(pauses > 0, 'the reader fell behind and its stream was paused')
  } finally {
    await reader.stop()
    await sender.stop()
  }
})
