import { test } from 'vitest'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { streamPair } from '@libp2p/utils'
import { z } from 'zod'
import { ProtocolError } from './errors.ts'
import { JsonStream } from './json-stream.ts'
import { decodeJsonMessage, encodeJsonMessage } from './json-messages.ts'
import { MAX_CONTROL_MESSAGE_BYTES } from './protocol-ids.ts'
import { enrollRequestSchema, heartbeatRequestSchema } from './index.ts'
import { blobRequestSchema, reportHeaderSchema, workRequestSchema } from './work.ts'

const SCHEMAS = [enrollRequestSchema, heartbeatRequestSchema, workRequestSchema, blobRequestSchema, reportHeaderSchema]
const CODES = new Set(['ERR_MALFORMED_MESSAGE', 'ERR_MESSAGE_TOO_LARGE', 'ERR_TIMEOUT', 'ERR_STREAM_CLOSED'])

/** Unsigned LEB128, the length prefix the wire uses. */
function varint (n: number): Uint8Array {
  const out: number[] = []
  do {
    const low = n % 128
    n = Math.floor(n / 128)
    out.push(n > 0 ? low | 0x80 : low)
  } while (n > 0)
  return Uint8Array.from(out)
}

/** A frame claiming `claimed` bytes, followed by `body`. */
const frame = (body: Uint8Array, claimed = body.length): Uint8Array => {
  const prefix = varint(claimed)
  const out = new Uint8Array(prefix.length + body.length)
  out.set(prefix)
  out.set(body, prefix.length)
  return out
}

test('json messages: any bytes decode under every request schema or throw ERR_MALFORMED_MESSAGE', () => {
  const bytes = fc.oneof(fc.uint8Array({ maxLength: 600 }), fc.jsonValue({ maxDepth: 3 }).map((v) => new TextEncoder().encode(JSON.stringify(v))))
  fc.assert(fc.property(bytes, fc.constantFrom(...SCHEMAS), (b, schema) => {
    try {
      decodeJsonMessage(b, schema as z.ZodType)
    } catch (err) {
      assert.ok(err instanceof ProtocolError && err.code === 'ERR_MALFORMED_MESSAGE', String(err))
    }
  }), { numRuns: 1000 })
})

test('json messages: what is encoded decodes to the same value, and an oversized one is refused', () => {
  fc.assert(fc.property(fc.jsonValue({ maxDepth: 3 }), (value) => {
    const decoded = decodeJsonMessage(encodeJsonMessage(value), z.unknown())
    assert.deepEqual(decoded, JSON.parse(JSON.stringify(value)))
  }), { numRuns: 300 })
  assert.throws(() => encodeJsonMessage('x'.repeat(MAX_CONTROL_MESSAGE_BYTES)), (err: unknown) => err instanceof ProtocolError && err.code === 'ERR_MESSAGE_TOO_LARGE')
})

test('length-prefixed frames: hostile bytes on a real stream end in a message or a typed error, promptly', async () => {
  // Frames with lying length prefixes, raw noise, and huge claimed lengths, each then closed.
  const wire = fc.oneof(
    fc.uint8Array({ maxLength: 300 }),
    fc.tuple(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 2 ** 31 })).map(([b, n]) => frame(b, n)),
    fc.jsonValue({ maxDepth: 2 }).map((v) => frame(new TextEncoder().encode(JSON.stringify(v)))),
    fc.constant(frame(new Uint8Array(0), MAX_CONTROL_MESSAGE_BYTES + 1)),
    fc.constant(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))
  )
  await fc.assert(fc.asyncProperty(wire, fc.constantFrom(...SCHEMAS), async (bytes, schema) => {
    const [outbound, inbound] = await streamPair()
    try {
      const started = Date.now()
      const read = new JsonStream(inbound).read(schema as z.ZodType, 2_000)
      outbound.send(bytes)
      await outbound.close()
      try {
        await read
      } catch (err) {
        assert.ok(err instanceof ProtocolError && CODES.has(err.code), `typed error, got ${String(err)}`)
      }
      assert.ok(Date.now() - started < 5_000, 'no hang past the read timeout')
    } finally {
      outbound.abort(new Error('done'))
      inbound.abort(new Error('done'))
    }
  }), { numRuns: 150 })
})

test('length-prefixed frames: a sender that stops mid-frame gets ERR_TIMEOUT, not a hung reader', async () => {
  const [outbound, inbound] = await streamPair()
  // AbortSignal.timeout does not hold the event loop open; a server's sockets do, this stands in.
  const keepAlive = setTimeout(() => {}, 5_000)
  try {
    const read = new JsonStream(inbound).read(heartbeatRequestSchema, 500)
    outbound.send(frame(new TextEncoder().encode('{"type":'), 40))
    await assert.rejects(read, (err: unknown) => err instanceof ProtocolError && err.code === 'ERR_TIMEOUT')
  } finally {
    clearTimeout(keepAlive)
    outbound.abort(new Error('done'))
    inbound.abort(new Error('done'))
  }
})

test('length-prefixed frames: a JSON message is refused at its length prefix past the control limit, even where chunks may be larger', async () => {
  const [outbound, inbound] = await streamPair()
  const keepAlive = setTimeout(() => {}, 5_000)
  try {
    const messages = new JsonStream(inbound, 256 * 1024)
    // A chunk of that size is still read as a frame…
    const chunk = new Uint8Array(200 * 1024).fill(7)
    const first = messages.readFrame(2_000)
    outbound.send(frame(chunk))
    assert.equal((await first).byteLength, chunk.byteLength)
    // …but a header claiming it is refused on the prefix alone, before a byte of it is held:
    // nothing but the prefix is sent, so waiting for the body would end in ERR_TIMEOUT.
    const header = messages.read(heartbeatRequestSchema, 2_000)
    outbound.send(varint(MAX_CONTROL_MESSAGE_BYTES + 1))
    await assert.rejects(header, (err: unknown) => err instanceof ProtocolError && err.code === 'ERR_MESSAGE_TOO_LARGE' && /message exceeds 65536 bytes/.test(err.message))
    // A length prefix that never ends is refused too, not read byte by byte until the timeout.
    const [outbound2, inbound2] = await streamPair()
    const endless = new JsonStream(inbound2).readFrame(2_000)
    outbound2.send(new Uint8Array(16).fill(0x80))
    await assert.rejects(endless, (err: unknown) => err instanceof ProtocolError && err.code === 'ERR_MALFORMED_MESSAGE')
    outbound2.abort(new Error('done'))
    inbound2.abort(new Error('done'))
  } finally {
    clearTimeout(keepAlive)
    outbound.abort(new Error('done'))
    inbound.abort(new Error('done'))
  }
})
