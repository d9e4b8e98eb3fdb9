import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { parseLedgerJson, verifyLedger } from '@barnraise/protocol'
import { DESKTOP_CONTEXT, launchChromium, screenshot } from './support/browser.ts'
import { startAgent, startCoordinator } from './support/cluster.ts'
import type { RunningAgent } from './support/cluster.ts'
import { startHostile } from './support/hostile.ts'
import type { Spawned } from './support/processes.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import type { ApiCheckpoint } from './support/runs.ts'

interface Row { outcome: string, round: number, peerId: string, tokens: number, reason: string | null, score: number | null }

describe('a run that screens its reports', () => {
  test('a sign-flipping agent and a free rider among honest agents: the loss falls, neither earns credit, each refusal says why; both are quarantined until an admin releases them on the Nodes page', async () => {
    const coordinator = await startCoordinator()
    const agents: RunningAgent[] = []
    const hostile: Array<{ peerId: string, proc: Spawned }> = []
    try {
      const token = await coordinator.createToken('Mixed Lab', { uses: 5 })
      for (let i = 0; i < 3; i++) agents.push(await startAgent({ coordinator: coordinator.multiaddr, token, name: `honest-${i}` }))
      const flipper = await startHostile('flip', coordinator.multiaddr, token)
      const freeRider = await startHostile('zero', coordinator.multiaddr, token)
      hostile.push(flipper, freeRider)
      const spec = tinyRunSpec({
        minNodes: 5, rounds: 4, codec: 'fp32', roundDeadlineSeconds: 90,
        recipe: { innerSteps: 10, batchSize: 4, seqLen: 32, innerLr: 0.01, warmupSteps: 2 },
        defences: { screening: true, aggregation: 'trimmed-mean', trim: 0.2 }
      })
      const runId = await createRunViaCli(coordinator.dataDir, spec)
      await waitForRun(coordinator.url, runId, (r) => r.status === 'completed', 120_000)

      const checkpoints = await getJson<ApiCheckpoint[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
      const first = checkpoints[0]!.valLoss!
      const last = checkpoints.at(-1)!.valLoss!
      assert.ok(last < first - 0.1, `validation loss fell: ${first} → ${last}`)

      const ledger = await getJson<Row[]>(coordinator.url, `api/runs/${runId}/ledger.json`)
      const of = (peerId: string): Row[] => ledger.filter((r) => r.peerId === peerId)
      // From random weights a flipped update still lowers the held-out loss about as much as an
      // honest one (round 1 learns much that is even in the weights), but it points against the
      // held-out gradient, which gives round 1 its direction: it earns nothing in any round.
      assert.equal(of(flipper.peerId).filter((r) => r.outcome === 'accepted').length, 0, 'the flipper earned nothing')
      assert.equal(of(freeRider.peerId).filter((r) => r.outcome === 'accepted').length, 0, 'the free rider earned nothing')
      const flips = of(flipper.peerId).filter((r) => r.outcome === 'refused')
      assert.ok(flips.length >= 3, `the flipper was refused in every round it reported in: ${flips.length}`)
      assert.match(flips.find((r) => r.round === 1)?.reason ?? '', /^ERR_UNRELATED: the pseudo-gradient's direction is unrelated to the loss gradient on held-out data .* \(cosine -/)
      // Against the run's direction, or uphill on held-out data: whichever check sees it first.
      for (const r of flips) assert.match(r.reason ?? '', /^(ERR_UNRELATED: the pseudo-gradient's direction is unrelated .* \(cosine -|ERR_HARMFUL: on held-out data this update (points uphill|raises the loss))/)
      const zeros = of(freeRider.peerId).filter((r) => r.outcome === 'refused')
      assert.ok(zeros.length >= 3)
      for (const r of zeros) assert.match(r.reason ?? '', /^ERR_EMPTY_DELTA/)
      // Every honest report was accepted, and scored; together they lowered the held-out loss
      // (one late report may not, on so few held-out windows).
      const honestScores: number[] = []
      for (const a of agents) {
        const rows = of(a.peerId)
        assert.ok(rows.length >= 3 && rows.every((r) => r.outcome === 'accepted'), `honest ${a.peerId}: ${rows.map((r) => r.reason ?? r.outcome).join(', ')}`)
        for (const r of rows) { assert.ok(r.score !== null && Number.isFinite(r.score), `honest report of round ${r.round} scored ${r.score}`); honestScores.push(r.score) }
      }
      assert.ok(honestScores.filter((x) => x > 0).length > honestScores.length / 2, `honest scores: ${honestScores.join(', ')}`)
      // The flipper's exclusions keep the score that condemned them; a zero delta is refused before scoring.
      assert.ok(flips.every((r) => r.score !== null), `flipper scores: ${flips.map((r) => r.score).join(', ')}`)
      assert.ok(flips.some((r) => r.score! < 0), 'a flipped update raises the held-out loss')
      assert.ok(zeros.every((r) => r.score === null))
      // Scores are hashed into the chain: the exported ledger, scores and all, verifies offline.
      const exported = parseLedgerJson(await (await fetch(new URL(`api/runs/${runId}/ledger.json`, coordinator.url))).text())
      assert.deepEqual(await verifyLedger(runId, exported), { ok: true, rows: exported.length })
      const csv = await (await fetch(new URL(`api/runs/${runId}/ledger.csv`, coordinator.url))).text()
      assert.match(csv.split('\r\n')[0]!, /,executor,score,devices,creditedDevices,creditedCores$/)

      // Both hostile nodes are quarantined, publicly, with why; no honest one is.
      const browser = await launchChromium(60_000)
      try {
        const page = await (await browser.newContext(DESKTOP_CONTEXT)).newPage()
        await page.goto(new URL('nodes', coordinator.url).toString())
        const row = (peerId: string) => page.locator(`[data-testid=node-row][data-peer-id="${peerId}"]`)
        for (const h of hostile) {
          await row(h.peerId).and(page.locator('[data-quarantined=true]')).waitFor({ timeout: 30_000 })
          assert.match(await row(h.peerId).getByTestId('node-quarantine').innerText(), /Quarantined[\s\S]*of its last \d+ judged reports were excluded \((ERR_[A-Z_]+( ×\d)?(, )?)+\)/)
          assert.equal(await row(h.peerId).getByTestId('node-release').count(), 0, 'a visitor cannot release it')
        }
        assert.match(await row(freeRider.peerId).getByTestId('node-quarantine').innerText(), /ERR_EMPTY_DELTA/)
        for (const a of agents) {
          assert.equal(await row(a.peerId).getAttribute('data-quarantined'), 'false')
          assert.match(await row(a.peerId).getByTestId('node-record').innerText(), /\d+ folded[\s\S]*mean score [+−]\d\.\d{4}/)
        }
        await screenshot(page, 'defences-nodes-quarantined-desktop')

        // The admin reviews the free rider and releases it; the page says so at once.
        await page.goto(new URL(`signup?setup=${coordinator.setupCode!}`, coordinator.url).toString())
        await page.getByTestId('role-organizer').click()
        await page.locator('#signup-name').fill('Ada Admin')
        await page.locator('#signup-email').fill('ada@barnraise.test')
        await page.locator('#signup-password').fill('a-long-admin-password')
        await page.getByTestId('signup-submit').click()
        await page.getByTestId('account-name').waitFor()
        await page.goto(new URL('nodes', coordinator.url).toString())
        await row(freeRider.peerId).getByTestId('node-release').click()
        await row(freeRider.peerId).getByTestId('node-release-confirm').click()
        await row(freeRider.peerId).and(page.locator('[data-quarantined=false]')).waitFor({ timeout: 30_000 })
        assert.equal(await row(flipper.peerId).getAttribute('data-quarantined'), 'true', 'only the reviewed node is released')
        assert.match(await row(freeRider.peerId).getByTestId('node-record').innerText(), /no reports yet/, 'its record starts afresh')
      } finally {
        await browser.close()
      }
    } catch (err) {
      // What each process said is the only way to tell why a round stalled.
      const tail = (text: string): string => text.split('\n').slice(-40).join('\n')
      throw new Error(`${(err as Error).message}\n--- coordinator ---\n${tail(coordinator.process.output())}\n${hostile.map((h) => `--- hostile ${h.peerId} ---\n${tail(h.proc.output())}`).join('\n')}\n${agents.map((a) => `--- honest ${a.peerId} ---\n${tail(a.output())}`).join('\n')}`)
    } finally {
      await Promise.all(agents.map(async (a) => { await a.stop() }))
      await Promise.all(hostile.map(async (h) => { await h.proc.stop() }))
      await coordinator.stop()
    }
  })
})
