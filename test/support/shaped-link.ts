// A network link of a given bandwidth and latency between an agent and the coordinator, made
// on loopback: a TCP proxy that holds each chunk until a link of that rate would have carried
// it, then one-way latency more. Each direction has its own rate (a full-duplex link).
import { createServer, connect } from 'node:net'
import type { Server, Socket } from 'node:net'

export interface LinkShape {
  /** bits per second, each way */
  bitsPerSecond: number
  /** one-way delay in milliseconds */
  latencyMs: number
}

/** A running shaped link; `bytes` counts what crossed it each way. */
export interface ShapedLink {
  port: number
  bytes: { up: number, down: number }
  close: () => Promise<void>
}

/** Bytes a direction holds before it stops reading from its sender. */
const MAX_QUEUED_BYTES = 64 * 1024

/** One direction: chunks leave in order, each when the link is free and its bits have crossed. */
function shape (from: Socket, to: Socket, link: LinkShape, count: (n: number) => void): void {
  let free = 0
  let ended = false
  const queue: Array<{ at: number, chunk: Buffer }> = []
  let timer: NodeJS.Timeout | undefined
  let queued = 0
  // One timer drains the queue front to back, so a stream's bytes never change order.
  const drain = (): void => {
    timer = undefined
    const now = performance.now()
    while (queue.length > 0 && queue[0]!.at <= now) {
      const { chunk } = queue.shift()!
      queued -= chunk.byteLength
      if (!to.destroyed) to.write(chunk)
    }
    // A router's buffer, not an unbounded one: the sender's TCP backs off when it is full.
    if (queued < MAX_QUEUED_BYTES && from.isPaused()) from.resume()
    if (queue.length > 0) timer = setTimeout(drain, Math.max(1, queue[0]!.at - now))
    else if (ended) to.end()
  }
  from.on('data', (chunk: Buffer) => {
    count(chunk.byteLength)
    const now = performance.now()
    free = Math.max(now, free) + chunk.byteLength * 8 * 1000 / link.bitsPerSecond
    queue.push({ at: free + link.latencyMs, chunk })
    queued += chunk.byteLength
    if (queued >= MAX_QUEUED_BYTES) from.pause()
    timer ??= setTimeout(drain, Math.max(1, queue[0]!.at - now))
  })
  from.on('end', () => { ended = true; timer ??= setTimeout(drain, 1) })
  from.on('error', () => { to.destroy() })
}

/** Listens on a loopback port and forwards every connection to `targetPort`, shaped both ways. */
export async function startShapedLink (targetPort: number, link: LinkShape): Promise<ShapedLink> {
  const bytes = { up: 0, down: 0 }
  const sockets = new Set<Socket>()
  const server: Server = createServer((inbound) => {
    const outbound = connect(targetPort, '127.0.0.1')
    for (const s of [inbound, outbound]) {
      s.setNoDelay(true)
      sockets.add(s)
      s.on('close', () => { sockets.delete(s) })
    }
    shape(inbound, outbound, link, (n) => { bytes.up += n })
    shape(outbound, inbound, link, (n) => { bytes.down += n })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the shaped link has no port')
  return {
    port: address.port,
    bytes,
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
    }
  }
}
