// Runs with the same model and seed start from the same weights. Each must still list its own
// round 0, with its own first loss, and train from it; checkpoint rows used to be keyed by
// sha256, so only the first such run had a round 0.
import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

describe('runs that share their initial weights', () => {
  test('each lists its own round 0 with a loss, trains from it, and downloads its own card and archive of the shared weights', async () => {
    let coordinator: RunningCoordinator | undefined
    let agent: RunningAgent | undefined
    try {
      coordinator = await startCoordinator()
      const token = await coordinator.createToken('Twin Lab')
      agent = await startAgent({ coordinator: coordinator.multiaddr, token, name: 'twin-trainer' })
      const spec = tinyRunSpec({ rounds: 1, recipe: { innerSteps: 4, batchSize: 4, seqLen: 32, innerLr: 0.003, warmupSteps: 1 } })
      const first = await createRunViaCli(coordinator.dataDir, { ...spec, name: 'first twin' })
      const second = await createRunViaCli(coordinator.dataDir, { ...spec, name: 'second twin' })
      const logs = { coordinator: () => coordinator?.process.output() ?? '', agent: () => agent?.output() ?? '' }
      for (const id of [first, second]) await waitForRun(coordinator.url, id, (r) => r.status === 'completed', undefined, logs)

      const lists = await Promise.all([first, second].map(async (id) => await getJson<ApiCheckpoint[]>(coordinator!.url, `api/runs/${id}/checkpoints`)))
      for (const [i, list] of lists.entries()) {
        assert.deepEqual(list.map((c) => c.round), [0, 1], `run ${i + 1} lists round 0 and round 1`)
        assert.ok(list.every((c) => c.valLoss !== null && Number.isFinite(c.valLoss)), `run ${i + 1} has a loss at each: ${JSON.stringify(list)}`)
      }
      const [a, b] = lists as [ApiCheckpoint[], ApiCheckpoint[]]
      assert.equal(a[0]!.sha256, b[0]!.sha256, 'the same initial weights')
      assert.equal(a[0]!.valLoss, b[0]!.valLoss, 'the same data and weights give the same first loss')
      const res = await fetch(new URL(`api/checkpoints/${b[0]!.sha256}/model.safetensors`, coordinator.url))
      assert.equal(res.status, 200)
      assert.equal(res.headers.get('x-checkpoint-round'), '0')
      await res.arrayBuffer()

      // Each run's own card and archive: shared weights are listed at a run-scoped address.
      const folders = await Promise.all([first, second].map(async (id) => await getJson<Array<{ round: number, url: string, tar: { name: string, url: string } }>>(coordinator!.url, `api/runs/${id}/checkpoints`)))
      for (const [i, id] of [first, second].entries()) {
        const [initial, trained] = folders[i]!
        assert.equal(initial!.url, `/api/runs/${id}/checkpoints/0/`, 'shared weights: the run-scoped address')
        assert.equal(initial!.tar.name, `${i === 0 ? 'first' : 'second'}-twin-round-0.tar`)
        // One agent trains both alike, so their round 1 may match too: run-scoped exactly where the weights are shared.
        const sameRound1 = lists[0]![1]!.sha256 === lists[1]![1]!.sha256
        assert.equal(trained!.url, sameRound1 ? `/api/runs/${id}/checkpoints/1/` : `/api/checkpoints/${lists[i]![1]!.sha256}/`)
        const card = await (await fetch(new URL(`${initial!.url}README.md`, coordinator.url))).text()
        assert.match(card, new RegExp(`${i === 0 ? 'first' : 'second'} twin`), `run ${i + 1}'s own card`)
        assert.ok(card.includes(`/api/runs/${id}/checkpoints/0/folder.tar`), 'which points at its own archive')
        const archive: Response = await fetch(new URL(initial!.tar.url, coordinator.url))
        assert.equal(archive.status, 200)
        assert.match(archive.headers.get('content-disposition') ?? '', new RegExp(`${i === 0 ? 'first' : 'second'}-twin-round-0\\.tar`))
        await archive.arrayBuffer()
      }
    } finally {
      await agent?.stop()
      await coordinator?.stop()
    }
  })
})
