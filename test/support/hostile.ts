import { tempDir } from './cluster.ts'
import { spawnCli } from './processes.ts'
import type { Spawned } from './processes.ts'

/** `slow` is honest, only four times slower (a laptop beside a GPU). */
export type Attack = 'flip' | 'zero' | 'scale' | 'replay' | 'slow'

/**
 * Starts a hostile agent process (test/support/hostile-agent.ts) mounting `attack`, signing
 * `claim` as its executor when given; resolves
 * with its peer id once it enrolled (and stops it if it never does).
 */
export async function startHostile (attack: Attack, coordinator: string, token: string, name = `hostile-${attack}`, claim?: 'torch-cpu' | 'torch-cuda' | 'none'): Promise<{ peerId: string, proc: Spawned }> {
  const proc = spawnCli('test/support/hostile-agent.ts', ['--attack', attack, '--coordinator', coordinator, '--token', token, '--data-dir', await tempDir(name), '--name', name, ...(claim !== undefined ? ['--claim', claim] : [])])
  try {
    const [, peerId] = await proc.waitForLine(/^agent: peer id (\S+)/, 60_000)
    await proc.waitForLine(/^agent: (?:enrolled|re-joined) as node/, 60_000)
    return { peerId: peerId!, proc }
  } catch (err) {
    await proc.stop()
    throw err
  }
}
