import type { WorkUnit } from '@barnraise/protocol'
import type { CoordinatorClient } from '@barnraise/node-agent'

/** Heartbeats and asks for work as an idle node until a unit comes (up to about 50 s). */
export async function waitForUnit (client: CoordinatorClient): Promise<WorkUnit | undefined> {
  for (let i = 0; i < 200; i++) {
    await client.heartbeat({ type: 'heartbeat', status: 'idle' })
    const reply = await client.requestWork()
    if (reply.kind === 'unit') return reply.unit
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return undefined
}
