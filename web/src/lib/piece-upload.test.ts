import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { PIECE_BYTES, UploadError, uploadPieces } from './piece-upload.ts'
import type { PieceTransport } from './piece-upload.ts'

const RANGE = /^bytes (\d+)-(\d+)\/(\d+)$/

/** What a request does before the fake server sees it: nothing, never arrive, arrive but lose the answer, or get this answer. */
type Fault = 'none' | 'lost-request' | 'lost-answer' | Response

/**
 * A coordinator's dataset upload in memory, answering as dataset-upload.ts does: a piece from
 * where the upload stands is kept (200 with receivedBytes), one from elsewhere is refused with
 * 409 and where it stands. `fault(n)` decides what happens to the n-th request (0-based).
 */
function fakeServer (size: number, fault: (n: number) => Fault = () => 'none') {
  const held = new Uint8Array(size)
  const server = {
    received: 0,
    requests: 0,
    /** every byte range the server kept, in order */
    kept: [] as Array<[number, number]>,
    held,
    send: (async (_url, init) => {
      const n = server.requests++
      const f = fault(n)
      if (f === 'lost-request') throw new TypeError('Failed to fetch')
      if (f instanceof Response) return f
      const headers = init.headers as Record<string, string>
      const m = RANGE.exec(headers['content-range'] ?? '')
      assert.ok(m !== null, 'every piece names its range')
      const [start, last, total] = [Number(m[1]), Number(m[2]), Number(m[3])]
      assert.equal(total, size)
      const bytes = new Uint8Array(await (init.body as Blob).arrayBuffer())
      assert.equal(bytes.length, last - start + 1, 'the body is the range it names')
      if (start !== server.received) return Response.json({ code: 'ERR_CONFLICT', error: 'send from where it stands', receivedBytes: server.received }, { status: 409 })
      held.set(bytes, start)
      server.received += bytes.length
      server.kept.push([start, server.received])
      if (f === 'lost-answer') throw new TypeError('network connection was lost')
      return Response.json({ receivedBytes: server.received })
    }) as PieceTransport
  }
  return server
}

/** A file of `size` bytes whose content shows where each byte belongs. */
function fileOf (size: number): { blob: Blob, bytes: Uint8Array } {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 7 + (i >> 13)) & 0xff
  return { blob: new Blob([bytes]), bytes }
}

/** Checks the server kept every byte once, in order, and holds the file. */
function assertWhole (server: ReturnType<typeof fakeServer>, bytes: Uint8Array): void {
  assert.equal(server.received, bytes.length)
  let at = 0
  for (const [start, end] of server.kept) {
    assert.equal(start, at, 'no byte range was kept twice or skipped')
    at = end
  }
  assert.equal(at, bytes.length)
  assert.ok(Buffer.from(server.held).equals(Buffer.from(bytes)), 'the server holds the file')
}

const noWait = async (): Promise<void> => {}

describe('piece upload', () => {
  const size = 2 * PIECE_BYTES + 12_345

  test('sends the file in pieces from the given byte and reports what the server confirmed', async () => {
    const { blob, bytes } = fileOf(size)
    const server = fakeServer(size)
    const progress: number[] = []
    await uploadPieces({ url: '/api/datasets/x/file', file: blob, from: 0, onProgress: (n) => { progress.push(n) }, received: async () => server.received, send: server.send, wait: noWait })
    assertWhole(server, bytes)
    assert.deepEqual(progress, [PIECE_BYTES, 2 * PIECE_BYTES, size])
    assert.equal(server.requests, 3)
  })

  test('a dropped connection is retried from where the server stands, even when the piece had arrived', async () => {
    const { blob, bytes } = fileOf(size)
    // The second piece never arrives; then the third arrives but its answer is lost.
    const server = fakeServer(size, (n) => n === 1 ? 'lost-request' : n === 3 ? 'lost-answer' : 'none')
    let asked = 0
    await uploadPieces({ url: '/u', file: blob, from: 0, onProgress: () => {}, received: async () => { asked++; return server.received }, send: server.send, wait: noWait })
    assertWhole(server, bytes)
    assert.equal(asked, 2, 'each failure asks the server where it stands')
    assert.equal(server.requests, 4, 'the piece that arrived is not sent again')
  })

  test('once retries are spent it stops with a resumable error, and a later attempt from receivedBytes sends only the rest', async () => {
    const { blob, bytes } = fileOf(size)
    let down = false
    const server = fakeServer(size, (n) => {
      if (n === 1) down = true
      return down ? 'lost-request' : 'none'
    })
    const waits: number[] = []
    const err = await uploadPieces({ url: '/u', file: blob, from: 0, onProgress: () => {}, received: async () => { throw new TypeError('Failed to fetch') }, send: server.send, wait: async (ms) => { waits.push(ms) } })
      .then(() => null, (e: unknown) => e)
    assert.ok(err instanceof UploadError)
    assert.equal(err.resumable, true)
    assert.match(err.message, /keeps failing \(Failed to fetch\)/)
    assert.match(err.message, /What reached the coordinator is kept: upload again \(after a reload, choose the same file first\) and it carries on from there$/)
    assert.equal(waits.length, 8, 'eight retries, each after a wait')
    assert.ok(waits.every((ms, i) => i === 0 || ms >= waits[i - 1]!), 'the waits back off')
    assert.equal(server.received, PIECE_BYTES, 'the server kept the first piece')

    // The connection is back; a new attempt starts where the server says it stands.
    down = false
    const requestsBefore = server.requests
    await uploadPieces({ url: '/u', file: blob, from: server.received, onProgress: () => {}, received: async () => server.received, send: server.send, wait: noWait })
    assertWhole(server, bytes)
    assert.equal(server.requests - requestsBefore, 2, 'only the two missing pieces were sent')
  })

  test('a start the server does not hold is corrected by its 409, without sending the held bytes again', async () => {
    const { blob, bytes } = fileOf(size)
    const server = fakeServer(size)
    // The server already holds the first piece (an earlier attempt); this one starts at 0.
    server.held.set(bytes.subarray(0, PIECE_BYTES))
    server.received = PIECE_BYTES
    server.kept.push([0, PIECE_BYTES])
    const progress: number[] = []
    await uploadPieces({ url: '/u', file: blob, from: 0, onProgress: (n) => { progress.push(n) }, received: async () => server.received, send: server.send, wait: noWait })
    assertWhole(server, bytes)
    assert.deepEqual(progress, [PIECE_BYTES, 2 * PIECE_BYTES, size])
  })

  test('busy and 5xx answers are retried; any other refusal stops the upload with the server\'s reason', async () => {
    const { blob, bytes } = fileOf(size)
    const busy = fakeServer(size, (n) => n === 0 ? Response.json({ code: 'ERR_BUSY' }, { status: 429 }) : n === 2 ? new Response('bad gateway', { status: 502 }) : 'none')
    await uploadPieces({ url: '/u', file: blob, from: 0, onProgress: () => {}, received: async () => busy.received, send: busy.send, wait: noWait })
    assertWhole(busy, bytes)

    const refusing = fakeServer(size, (n) => n === 1 ? Response.json({ code: 'ERR_QUOTA_EXCEEDED', error: 'the dataset quota is full' }, { status: 413 }) : 'none')
    const err = await uploadPieces({ url: '/u', file: blob, from: 0, onProgress: () => {}, received: async () => refusing.received, send: refusing.send, wait: noWait }).then(() => null, (e: unknown) => e)
    assert.ok(err instanceof UploadError)
    assert.equal(err.message, 'the dataset quota is full')
    assert.equal(err.resumable, true, 'the pieces taken before a full quota are kept')
    assert.equal(refusing.requests, 2, 'a refusal is not retried')

    const forbidden = fakeServer(size, (n) => n === 0 ? Response.json({ code: 'ERR_FORBIDDEN', error: 'not your dataset' }, { status: 403 }) : 'none')
    const denied = await uploadPieces({ url: '/u', file: blob, from: 0, onProgress: () => {}, received: async () => forbidden.received, send: forbidden.send, wait: noWait }).then(() => null, (e: unknown) => e)
    assert.ok(denied instanceof UploadError)
    assert.equal(denied.resumable, false)
  })
})
