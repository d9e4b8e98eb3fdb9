/*
 * Funders in a real browser (items 6 and 7 of issue 8): a GPU-hour pledge made after a lab's
 * earlier work shows nothing delivered until that lab's machines deliver after it; the statement
 * page lists what the pledge bought and its CSV matches; money pledges show the run's goals;
 * the run page charts throughput, active nodes, tokens per lab, funding against the goal, and
 * the loss against the unigram baseline; a one-point chart has no −1…1 axis; the y title never
 * overlaps the tick labels at phone width. The run's history is seeded into the database
 * (test/support/ledger-seed.ts), so nothing trains and the file runs in well under a minute.
 * Screenshots at 1280 and 390 px land in test-artifacts/screenshots/funders-*.png.
 */
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { Coordinator } from '@barnraise/coordinator'
import { SCREENSHOTS, launchChromium, assertNoHorizontalScroll, watchLayoutWidth } from './support/browser.ts'
import { tempDir } from './support/cluster.ts'
import { createTestDatabase } from './support/postgres.ts'
import { sessionClient } from './support/session-client.ts'
import { LedgerSeeder } from './support/ledger-seed.ts'
import type { SeededNode } from './support/ledger-seed.ts'

const DESKTOP = { viewport: { width: 1280, height: 800 }, colorScheme: 'light', reducedMotion: 'reduce' } as const
const PHONE = { viewport: { width: 390, height: 844 }, colorScheme: 'light', reducedMotion: 'reduce', isMobile: true, hasTouch: true } as const
const WAIT_MS = 20_000
const PASSWORD = 'a-long-password'

type Box = { x: number, y: number, width: number, height: number }
const overlaps = (a: Box, b: Box): boolean => a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height

async function screenshot (page: Page, name: string): Promise<void> {
  await page.evaluate(() => { window.scrollTo(0, 0) })
  await page.screenshot({ path: join(SCREENSHOTS, `funders-${name}.png`), fullPage: true })
}

/** A screenshot of one part of the page, without the sticky top bar drawn over it. */
async function partShot (page: Page, testId: string, name: string): Promise<void> {
  await page.addStyleTag({ content: '.topbar { position: static !important; }' })
  await page.getByTestId(testId).screenshot({ path: join(SCREENSHOTS, `funders-${name}.png`) })
}

/** The y title of a chart never overlaps its tick labels, and no x tick reads negative. */
async function assertReadableAxes (page: Page, chart: string): Promise<void> {
  const root = page.getByTestId(chart)
  const title = await root.getByTestId('y-title').boundingBox()
  assert.ok(title !== null, `${chart} has a y title`)
  for (const tick of await root.getByTestId('y-tick').all()) {
    const box = await tick.boundingBox()
    assert.ok(box !== null && !overlaps(title, box), `${chart}: y title overlaps tick "${await tick.textContent()}"`)
  }
}

describe('funders and charts in a real browser', { timeout: 180_000 }, () => {
  let coordinator: Coordinator
  let dropDatabase: () => Promise<void>
  let browser: Browser
  let runId = ''
  let freshRunId = ''
  let seed: LedgerSeeder
  let gpuBox: SeededNode
  let cpuBox: SeededNode
  let smallCpu: SeededNode
  let otherGpu: SeededNode
  let gale: { context: BrowserContext, page: Page }
  const contexts: BrowserContext[] = []
  const url = (path: string): string => new URL(path, coordinator.url).toString()

  async function signedIn (email: string, viewport: typeof DESKTOP | typeof PHONE = DESKTOP, state?: Awaited<ReturnType<BrowserContext['storageState']>>): Promise<{ context: BrowserContext, page: Page }> {
    const context = await browser.newContext({ ...viewport, ...(state !== undefined ? { storageState: state } : {}) })
    contexts.push(context)
    if (viewport === PHONE) await watchLayoutWidth(context)
    const page = await context.newPage()
    page.setDefaultTimeout(WAIT_MS)
    page.on('pageerror', (err) => { process.stderr.write(`[page error] ${err.message}\n`) })
    if (state === undefined) {
      await page.goto(url('/signin'))
      await page.locator('#signin-email').fill(email)
      await page.locator('#signin-password').fill(PASSWORD)
      await page.getByTestId('signin-submit').click()
      await page.getByTestId('account-name').waitFor()
    }
    return { context, page }
  }

  /** The same page at phone width, same session: screenshot, and nothing scrolls sideways. */
  async function phoneShot (who: { context: BrowserContext }, path: string, name: string, ready: (page: Page) => Promise<void>): Promise<Page> {
    const phone = await signedIn('', PHONE, await who.context.storageState())
    await phone.page.goto(url(path))
    await ready(phone.page)
    await assertNoHorizontalScroll(phone.page, `${path} at 390px`)
    await screenshot(phone.page, `${name}-phone`)
    return phone.page
  }

  const minutesAgo = (m: number): Date => new Date(Date.now() - m * 60_000)

  beforeAll(async () => {
    browser = await launchChromium(WAIT_MS)
    const database = await createTestDatabase()
    dropDatabase = database.drop
    coordinator = await Coordinator.start({ dataDir: await tempDir('funders-browser'), databaseUrl: database.url, httpPort: 0, p2pPort: 0 })
    const organizer = sessionClient(coordinator.url)
    await organizer.auth.signUp.mutate({ email: 'olu@runs.test', password: PASSWORD, displayName: 'Olu Organizer', role: 'organizer', setupCode: coordinator.setupCode! })
    for (const [email, name, organization] of [['gale@gpu.test', 'Gale Funder', 'GPU Lab'], ['cora@cpu.test', 'Cora Funder', 'CPU Lab'], ['nora@solo.test', 'Nora Funder', undefined]] as const) {
      await sessionClient(coordinator.url).auth.signUp.mutate({ email, password: PASSWORD, displayName: name, role: 'funder', ...(organization !== undefined ? { organization } : {}) })
    }
    const spec = { model: { preset: 'tiny' }, rounds: 50, recipe: { seqLen: 32, batchSize: 4 }, evalBatches: 2 }
    runId = (await organizer.runs.create.mutate({ spec: { ...spec, name: 'Community LM', description: 'Seeded history for the funders browser test.', fundingGoalUsd: 1000, computeGoalGpuHours: 10 } })).id
    freshRunId = (await organizer.runs.create.mutate({ spec: { ...spec, name: 'Fresh run' } })).id
    const db = coordinator.database.db
    // Paused: the round engine leaves seeded runs alone; they still take pledges.
    await db.updateTable('runs').set({ status: 'paused' }).where('id', 'in', [runId, freshRunId]).execute()

    seed = new LedgerSeeder(db, runId)
    gpuBox = await seed.node({ organization: 'GPU Lab', name: 'gpu-box', gpus: 2, cpuCores: 32 })
    cpuBox = await seed.node({ organization: 'CPU Lab', name: 'cpu-box-1', cpuCores: 8 })
    smallCpu = await seed.node({ organization: 'CPU Lab', name: 'cpu-box-2', cpuCores: 4 })
    otherGpu = await seed.node({ organization: 'Other Lab', name: 'other-gpu', gpus: 1 })
    // Rounds 1–4, every two minutes before anyone pledges: GPU Lab trains 0.67 GPU-hours that
    // are not any pledge's (the "Delivered 0.61 of 0.50 GPU-h — Goal reached").
    await db.updateTable('runs').set({ created_at: minutesAgo(12) }).where('id', '=', runId).execute()
    for (let r = 1; r <= 4; r++) {
      const opened = minutesAgo(10 - 2 * r)
      const closed = new Date(opened.getTime() + 8_000)
      const round = await seed.round(r, { openedAt: opened, closedAt: closed, tokens: 2000 + 2500 + 800 + (r > 2 ? 600 : 0), trainLoss: 5.6 - r * 0.35, valLoss: 5.5 - r * 0.35 })
      await seed.report(gpuBox, { id: round.id, number: r }, { tokens: 2000, computeSeconds: 600, at: new Date(closed.getTime() - 3_000) })
      await seed.report(otherGpu, { id: round.id, number: r }, { tokens: 2500, computeSeconds: 700, at: new Date(closed.getTime() - 2_000) })
      await seed.report(cpuBox, { id: round.id, number: r }, { tokens: 800, computeSeconds: 900, at: new Date(closed.getTime() - 1_000) })
      if (r > 2) await seed.report(smallCpu, { id: round.id, number: r }, { tokens: 600, computeSeconds: 900, at: new Date(closed.getTime() - 500) })
    }
    // Cora's pledges came early; the funding chart shows them as steps.
    const cora = sessionClient(coordinator.url)
    await cora.auth.signIn.mutate({ email: 'cora@cpu.test', password: PASSWORD })
    const early = await cora.pledges.create.mutate({ runId, kind: 'usd', amount: 300, note: 'for the CPU Lab students' })
    const cpu = await cora.pledges.create.mutate({ runId, kind: 'cpu_core_hours', amount: 2 })
    await db.updateTable('pledges').set({ created_at: minutesAgo(9) }).where('id', '=', early.id).execute()
    await db.updateTable('pledges').set({ created_at: minutesAgo(5) }).where('id', '=', cpu.id).execute()

    // The fresh run has one closed round: a one-point loss chart.
    const fresh = new LedgerSeeder(db, freshRunId)
    const r1 = await fresh.round(1, { openedAt: minutesAgo(10), closedAt: minutesAgo(9), tokens: 2000, trainLoss: 5.31, valLoss: 5.27 })
    await fresh.report(gpuBox, { id: r1.id, number: 1 }, { tokens: 2000, computeSeconds: 60, at: minutesAgo(9) })
  })

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {})
    await browser?.close().catch(() => {})
    await coordinator?.stop()
    await dropDatabase?.()
  })

  let gpuPledgeId = ''
  let moneyPledgeId = ''

  test('a funder without an organization is told plainly why a GPU-hour pledge cannot be taken', async () => {
    const { page } = await signedIn('nora@solo.test')
    await page.goto(url(`/runs/${runId}`))
    await page.getByTestId('pledge-form').waitFor()
    await page.getByTestId('pledge-kind').getByRole('radio', { name: 'GPU-hours' }).click()
    await page.locator('#pledge-amount').fill('1')
    await page.getByTestId('pledge-submit').click()
    const error = page.locator('[data-testid="field-error"][data-field="amount"]')
    await error.waitFor()
    assert.match(await error.innerText(), /GPU-hours are delivered by your organization's machines.*no organization.*pledge money instead/)
  })

  test('right after a GPU-hour pledge, the Pledges page says nothing is delivered yet, and money shows the run’s goals', async () => {
    gale = await signedIn('gale@gpu.test')
    const { page } = gale
    await page.goto(url(`/runs/${runId}`))
    await page.getByTestId('pledge-form').waitFor()
    await page.getByTestId('pledge-kind').getByRole('radio', { name: 'GPU-hours' }).click()
    await page.locator('#pledge-amount').fill('0.5')
    await page.getByTestId('pledge-submit').click()
    await page.getByTestId('pledge-done').waitFor()
    await page.getByTestId('pledge-kind').getByRole('radio', { name: 'Money (USD)' }).click()
    await page.locator('#pledge-amount').fill('250')
    await page.getByTestId('pledge-submit').click()
    await page.locator('[data-testid="run-pledge"][data-kind="usd"][data-amount="250"]').waitFor()

    await page.goto(url('/pledges'))
    const run = page.locator(`[data-testid="my-pledge-run"][data-run-id="${runId}"]`)
    await run.waitFor()
    const gpu = run.locator('[data-testid="my-pledge"][data-kind="gpu_hours"]')
    gpuPledgeId = (await gpu.getAttribute('data-pledge-id'))!
    moneyPledgeId = (await run.locator('[data-testid="my-pledge"][data-kind="usd"]').getAttribute('data-pledge-id'))!
    // GPU Lab trained 0.33 GPU-hours before the pledge: none of it is the pledge's.
    assert.match(await gpu.getByTestId('pledge-delivered').innerText(), /^[\s\S]*\b0\s*of 0\.50 GPU-h[\s\S]*Nothing yet/)
    assert.equal(await gpu.getAttribute('data-fulfilled'), 'false')
    // The money pledge shows the run's goals: funding and compute, not "No goal set".
    assert.match(await run.getByTestId('run-funding-goal').innerText(), /\$550\s*of \$1,000/)
    assert.match(await run.getByTestId('run-compute-goal').innerText(), /of 10 GPU-h/)
    assert.match(await run.getByTestId('run-compute-goal').innerText(), /CPU core-h from CPU-only machines/)
    assert.doesNotMatch(await run.innerText(), /No goal set/)
    await screenshot(page, 'pledges-just-pledged-desktop')
    await phoneShot(gale, '/pledges', 'pledges-just-pledged', async (p) => { await p.getByTestId('my-pledge').first().waitFor() })
  })

  test('after GPU Lab’s machines deliver, the pledge is fulfilled by their work only; the statement and its CSV say what it bought', async () => {
    // Rounds 5–7 after the pledge: GPU Lab 0.33 + 0.33 GPU-h (the pledge takes 0.5), others too.
    const pledges = await sessionClient(coordinator.url).pledges.forRun.query({ runId })
    const after = Date.parse(pledges.pledges[0]!.createdAt)
    const at = (s: number): Date => new Date(after + s * 1000)
    for (const r of [5, 6]) {
      const k = (r - 5) * 9
      const round = await seed.round(r, { openedAt: at(k + 0.5), closedAt: at(k + 8.5), tokens: 2000 + 2500 + 800, trainLoss: 3.9 - (r - 5) * 0.2, valLoss: 3.8 - (r - 5) * 0.2 })
      await seed.report(gpuBox, { id: round.id, number: r }, { tokens: 2000, computeSeconds: 1200, at: at(k + 6) })
      await seed.report(otherGpu, { id: round.id, number: r }, { tokens: 2500, computeSeconds: 1200, at: at(k + 7) })
      await seed.report(cpuBox, { id: round.id, number: r }, { tokens: 800, computeSeconds: 900, at: at(k + 8) })
    }
    const open = await seed.round(7, { openedAt: at(18) })
    await seed.report(smallCpu, { id: open.id, number: 7 }, { tokens: 600, computeSeconds: 900, at: at(19) })

    const { page } = gale
    await page.goto(url('/pledges'))
    const gpu = page.locator(`[data-testid="my-pledge"][data-pledge-id="${gpuPledgeId}"]`)
    await gpu.and(page.locator('[data-fulfilled="true"]')).waitFor()
    assert.match(await gpu.getByTestId('pledge-delivered').innerText(), /0\.50\s*of 0\.50 GPU-h[\s\S]*Delivered in full/)
    await screenshot(page, 'pledges-delivered-desktop')
    await phoneShot(gale, '/pledges', 'pledges-delivered', async (p) => { await p.locator('[data-fulfilled="true"]').first().waitFor() })

    await gpu.getByTestId('statement-link').click()
    await page.waitForURL((u) => u.pathname === `/pledges/${gpuPledgeId}`)
    const statement = page.getByTestId('statement-page')
    await statement.waitFor()
    assert.equal(await page.getByTestId('statement-delivery').getAttribute('data-fulfilled'), 'true')
    assert.equal(await page.getByTestId('statement-fulfilment').getAttribute('data-value'), '0.5')
    assert.equal(await page.getByTestId('statement-tokens').innerText(), '3K', '2,000 + half of 2,000 tokens')
    assert.equal(await page.getByTestId('statement-gpu-hours').innerText(), '0.50')
    assert.equal(await page.getByTestId('statement-cpu-core-hours').innerText(), '0')
    assert.deepEqual(await page.getByTestId('statement-lab').locator('td').first().allInnerTexts(), ['GPU Lab'], 'only the pledger’s lab')
    assert.match(await page.getByTestId('statement-node').innerText(), /gpu-box[\s\S]*NVIDIA H100 80GB HBM3 × 2[\s\S]*0\.50 GPU-h/)
    assert.deepEqual(await page.getByTestId('statement-checkpoint').evaluateAll((rows) => rows.map((r) => `${r.getAttribute('data-round')}:${r.getAttribute('data-state')}`)), ['5:written', '6:written'])
    assert.deepEqual(await page.getByTestId('statement-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-share'))), ['1', '0.5'], 'the second row is half counted: the pledge was full')
    assert.match(await page.getByTestId('statement-org-since').innerText(), /0\.67 GPU-h/)
    await screenshot(page, 'statement-gpu-desktop')
    await phoneShot(gale, `/pledges/${gpuPledgeId}`, 'statement-gpu', async (p) => { await p.getByTestId('statement-row').first().waitFor() })

    // The CSV behind the button has the same rows.
    const href = await page.getByTestId('statement-csv').getAttribute('href')
    assert.equal(href, `/api/pledges/${gpuPledgeId}/statement.csv`)
    const csv = (await (await fetch(url(href!))).text()).trimEnd().split('\r\n')
    assert.equal(csv.length, 3)
    assert.deepEqual(csv.slice(1).map((l) => l.split(',').slice(12, 14)), [['gpu_hours', '0.333333333'], ['gpu_hours', '0.166666667']])
  })

  test('a money pledge’s statement is the whole run’s work since, by every lab; bad addresses say so', async () => {
    const { page } = gale
    await page.goto(url(`/pledges/${moneyPledgeId}`))
    await page.getByTestId('statement-page').waitFor()
    assert.equal(await page.getByTestId('statement-page').getAttribute('data-kind'), 'usd')
    await page.getByTestId('statement-goals').waitFor()
    assert.match(await page.getByTestId('statement-rule').innerText(), /Money is not tied to particular machines/)
    const labs = await page.getByTestId('statement-lab').evaluateAll((rows) => rows.map((r) => r.querySelector('td')!.textContent))
    assert.deepEqual([...labs].sort(), ['CPU Lab', 'GPU Lab', 'Other Lab'])
    assert.match(await page.getByTestId('statement-checkpoints').innerText(), /Round open/)
    await screenshot(page, 'statement-money-desktop')
    await phoneShot(gale, `/pledges/${moneyPledgeId}`, 'statement-money', async (p) => { await p.getByTestId('statement-lab').first().waitFor() })

    for (const bad of ['not-a-pledge', '00000000-0000-4000-8000-000000000000']) {
      await page.goto(url(`/pledges/${bad}`))
      await page.getByTestId('statement-not-found').waitFor()
    }
    await screenshot(page, 'statement-not-found-desktop')
  })

  test('the run page charts: loss with the unigram baseline, throughput, active nodes, tokens per lab, funding against the goal', async () => {
    const { page } = gale
    await page.goto(url(`/runs/${runId}`))
    const loss = page.getByTestId('loss-chart')
    await loss.waitFor()
    const baseline = loss.locator('[data-testid="reference-line"][data-series="baseline"]')
    await baseline.waitFor({ state: 'attached' })
    const y = Number(await baseline.getAttribute('data-y'))
    assert.ok(y > 2 && y < Math.log(256), `baseline ${y} nats/token`)
    assert.match(await loss.locator('[data-testid="legend-item"][data-series="baseline"]').innerText(), /Unigram baseline/)

    const activity = page.getByTestId('run-activity')
    await activity.getByTestId('throughput-chart').waitFor()
    assert.equal(await page.getByTestId('throughput-chart').getByTestId('chart-point').count(), 6, 'one point per closed round')
    assert.equal(await page.getByTestId('nodes-chart').locator('[data-testid="chart-point"][data-series="nodes"]').count(), 6)
    const layers = page.getByTestId('labs-chart').getByTestId('chart-layer')
    assert.equal(await layers.count(), 3)
    const totals = await layers.evaluateAll((ls) => ls.map((l) => Number(l.getAttribute('data-total'))))
    assert.deepEqual(totals, [15_000, 27_000, 33_000], 'stacked running totals of closed rounds: Other Lab, then GPU Lab, then CPU Lab on top')
    const funding = page.getByTestId('funding-chart')
    assert.equal(await funding.locator('[data-testid="reference-line"][data-series="goal"]').getAttribute('data-y'), '1000')
    assert.match(await page.getByTestId('funding-card').innerText(), /Pledged\s*\$550/)
    await page.getByTestId('funding-kind').getByRole('radio', { name: 'GPU-hours' }).click()
    assert.equal(await funding.locator('[data-testid="reference-line"][data-series="goal"]').getAttribute('data-y'), '10')
    await funding.locator('[data-testid="chart-series"][data-series="delivered"]').waitFor()
    await page.getByTestId('funding-kind').getByRole('radio', { name: 'Money' }).click()
    // The nodes table labels each machine's time by its kind.
    const cpuRow = page.locator(`[data-testid="run-node-row"][data-peer-id="${cpuBox.peerId}"]`)
    assert.match(await cpuRow.getByTestId('node-compute').innerText(), /CPU core-h/)
    assert.match(await page.locator(`[data-testid="run-node-row"][data-peer-id="${otherGpu.peerId}"]`).getByTestId('node-compute').innerText(), /GPU-h/)
    await screenshot(page, 'run-charts-desktop')
    await partShot(page, 'loss-card', 'run-loss-desktop')
    await partShot(page, 'run-activity', 'run-activity-desktop')

    const phone = await phoneShot(gale, `/runs/${runId}`, 'run-charts', async (p) => { await p.getByTestId('labs-chart').waitFor(); await p.getByTestId('loss-chart').locator('[data-testid="reference-line"]').waitFor({ state: 'attached' }) })
    for (const chart of ['loss-chart', 'throughput-chart', 'nodes-chart', 'labs-chart', 'funding-chart']) await assertReadableAxes(phone, chart)
    await partShot(phone, 'run-activity', 'run-activity-phone')
  })

  test('a run with one closed round: the loss chart’s axes sit around that point, with no round −1', async () => {
    const { page } = gale
    await page.goto(url(`/runs/${freshRunId}`))
    const loss = page.getByTestId('loss-chart')
    await loss.locator('[data-testid="loss-point"]').first().waitFor()
    const xTicks = await loss.getByTestId('x-tick').allTextContents()
    assert.ok(xTicks.length > 0 && xTicks.every((t) => Number(t) >= 0), `x ticks: ${xTicks.join(' ')}`)
    assert.ok(xTicks.includes('1'))
    // The y range spans the point and the baseline line, nothing more.
    const yTicks = (await loss.getByTestId('y-tick').allTextContents()).map(Number)
    assert.ok(yTicks.length > 0 && yTicks.every((t) => t > 2 && t < 6), `y ticks: ${yTicks.join(' ')}`)
    await page.getByTestId('throughput-chart').getByTestId('chart-point').first().waitFor()
    assert.equal(await page.getByTestId('throughput-chart').getByTestId('chart-point').count(), 1)
    await screenshot(page, 'run-one-round-desktop')
    await partShot(page, 'loss-card', 'run-one-round-loss-desktop')
    const phone = await phoneShot(gale, `/runs/${freshRunId}`, 'run-one-round', async (p) => { await p.getByTestId('loss-chart').locator('[data-testid="loss-point"]').first().waitFor() })
    await assertReadableAxes(phone, 'loss-chart')
    await partShot(phone, 'loss-card', 'run-one-round-loss-phone')
  })
})
