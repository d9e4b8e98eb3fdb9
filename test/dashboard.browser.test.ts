/*
 * The dashboard in a real browser against a real coordinator and a real agent: the empty
 * state, a node appearing live when it enrolls, going offline when it stops, navigation,
 * phone width, and what the page says when the coordinator goes away.
 *
 * Needs the built dashboard (`pnpm --filter @barnraise/web build`) and Chromium at
 * /usr/bin/chromium (Debian: `apt-get install chromium`). Screenshots land in
 * test-artifacts/screenshots/.
 */
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { startAgent, startCoordinator } from './support/cluster.ts'
import { PHONE_CONTEXT, launchChromium, screenshot, assertNoHorizontalScroll, watchLayoutWidth } from './support/browser.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { runCli } from './support/processes.ts'
import { apiClient } from './support/api-client.ts'

const DESKTOP = { width: 1280, height: 800 }
/** Longest we wait for anything the page should show. */
const WAIT_MS = 20_000
const PAGES = [
  { label: 'Runs', path: '/runs', heading: 'Runs' },
  { label: 'Nodes', path: '/nodes', heading: 'Nodes' },
  { label: 'Ledger', path: '/ledger', heading: 'Ledger' },
  { label: 'Pledges', path: '/pledges', heading: 'Pledges' }
] as const

describe('dashboard in a real browser', { timeout: 180_000 }, () => {
  let coordinator: RunningCoordinator | undefined
  let agent: RunningAgent | undefined
  let browser: Browser | undefined
  let desktop: BrowserContext
  let page: Page

  beforeAll(async () => {
    browser = await launchChromium(WAIT_MS)
    coordinator = await startCoordinator()
    desktop = await browser.newContext({ viewport: DESKTOP, colorScheme: 'light', reducedMotion: 'reduce' })
    page = await desktop.newPage()
    page.setDefaultTimeout(WAIT_MS)
    page.setDefaultNavigationTimeout(WAIT_MS)
  })

  afterAll(async () => {
    await browser?.close().catch(() => {})
    await agent?.stop().catch(() => {})
    await coordinator?.stop().catch(() => {})
  })

  test('the root opens the dashboard with the main places in the navigation', async () => {
    await page.goto(coordinator!.url)
    await page.waitForURL(/\/runs$/)
    const nav = page.getByRole('navigation', { name: 'Main' })
    for (const { label } of PAGES) {
      assert.equal(await nav.getByRole('link', { name: label, exact: true }).count(), 1, `nav link ${label}`)
    }
    await page.getByTestId('runs-empty').waitFor()
    assert.match(await page.getByTestId('runs-empty').innerText(), /No runs yet/)
    await page.locator('[data-testid="live-indicator"][data-state="live"]').waitFor()
    await screenshot(page, 'desktop-runs-empty')
  })

  test('the Nodes page tells a lab admin how to enroll a machine', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Nodes', exact: true }).click()
    await page.waitForURL(/\/nodes$/)
    const empty = page.getByTestId('nodes-empty')
    await empty.waitFor()
    // The join command names this coordinator's real address; lab admins get tokens on the Labs page.
    await empty.locator('.command-word', { hasText: coordinator!.multiaddr }).waitFor()
    assert.ok((await empty.innerText()).includes(`bash scripts/setup.sh && pnpm agent join --coordinator ${coordinator!.multiaddr} --token <token>`), 'join command with the real address')
    const text = await empty.innerText()
    assert.match(text, /pnpm coordinator token create/)
    assert.match(text, /listens on this machine only/, 'a loopback-only coordinator says other machines cannot reach it')
    assert.match(text, /Labs page/)
    assert.equal(await page.getByRole('link', { name: 'Nodes', exact: true }).getAttribute('aria-current'), 'page')
    await screenshot(page, 'desktop-nodes-empty')

    const phone = await browser!.newContext(PHONE_CONTEXT)
    await watchLayoutWidth(phone)
    try {
      const mobile = await phone.newPage()
      mobile.setDefaultTimeout(WAIT_MS)
      await mobile.goto(new URL('/nodes', coordinator!.url).toString())
      await mobile.getByTestId('nodes-empty').waitFor()
      await assertNoHorizontalScroll(mobile, '/nodes empty state at 375px')
      await screenshot(mobile, 'phone-nodes-empty')
    } finally {
      await phone.close()
    }
  })

  test('an enrolling agent appears live, with its hardware and an online status', async () => {
    // A marker that a reload would wipe: the row must arrive through live updates.
    await page.evaluate(() => { (window as unknown as { marker: string }).marker = 'no-reload' })
    const token = await coordinator!.createToken('Browser Lab')
    agent = await startAgent({ coordinator: coordinator!.multiaddr, token, name: 'browser-worker-1' })

    const row = page.locator(`[data-testid="node-row"][data-peer-id="${agent.peerId}"]`)
    await row.waitFor()
    await row.locator('[data-testid="node-status"][data-online="true"]').waitFor()
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: string }).marker), 'no-reload', 'the page reloaded')

    const [node] = (await apiClient(coordinator!.url).nodes.list.query()).filter((n) => n.peerId === agent!.peerId)
    assert.ok(node !== undefined)
    assert.equal(await row.getByTestId('node-name').innerText(), 'browser-worker-1')
    assert.equal(await row.getByTestId('node-org').innerText(), 'Browser Lab')
    const cpu = row.getByTestId('node-cpu')
    assert.match(await cpu.innerText(), new RegExp(`× ${node.hardware.cpuCores}\\b`))
    assert.equal(await cpu.locator('[title]').first().getAttribute('title'), node.hardware.cpuModel)
    assert.match(await row.getByTestId('node-memory').innerText(), /^\d+(\.\d)? GiB$/)
    if (node.hardware.gpus.length === 0) assert.equal(await row.getByTestId('node-gpus').innerText(), 'CPU only')
    assert.match(await row.getByTestId('node-status').innerText(), /Online|Training|Uploading|Downloading/)
    assert.equal(await page.getByTestId('nodes-empty').count(), 0)
    await screenshot(page, 'desktop-nodes-online')
  })

  test('a stopped agent goes offline without a reload', async () => {
    const row = page.locator(`[data-testid="node-row"][data-peer-id="${agent!.peerId}"]`)
    await agent!.stop()
    await row.locator('[data-testid="node-status"][data-status="offline"]').waitFor()
    assert.equal(await row.getByTestId('node-status').innerText(), 'Offline')
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: string }).marker), 'no-reload', 'the page reloaded')
    await screenshot(page, 'desktop-nodes-offline')
  })

  test('a run created from a spec appears live on the Runs page', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Runs', exact: true }).click()
    await page.getByTestId('runs-empty').waitFor()
    const created = await runCli('coordinator/src/cli.ts', ['run', 'create', '--spec', 'data/demo-run.json', '--data-dir', coordinator!.dataDir], { DATABASE_URL: '' })
    assert.equal(created.code, 0, created.output)
    const row = page.getByTestId('run-row')
    await row.waitFor()
    assert.match(await row.innerText(), /KJV demo/)
    assert.equal(await row.getByTestId('run-status').getAttribute('data-status'), 'draft')
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: string }).marker), 'no-reload', 'the page reloaded')
    await screenshot(page, 'desktop-runs')
  })

  test('every navigation link opens its page, and deep links survive a reload', async () => {
    const nav = page.getByRole('navigation', { name: 'Main' })
    for (const { label, path, heading } of PAGES) {
      await nav.getByRole('link', { name: label, exact: true }).click()
      await page.waitForURL((url) => url.pathname === path)
      await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor()
      assert.equal(await nav.getByRole('link', { name: label, exact: true }).getAttribute('aria-current'), 'page')
      assert.equal(await page.title(), `${heading} · Barnraise`)
      if (label === 'Ledger') {
        // A run exists (a draft): the ledger offers it to pick.
        await page.getByTestId('ledger-run-row').first().waitFor()
        await screenshot(page, 'desktop-ledger')
      }
      if (label === 'Pledges') {
        // Visitors get an explanation and the runs they could back.
        await page.getByTestId('pledges-explainer').waitFor()
        await page.getByTestId('back-run').first().waitFor()
        await screenshot(page, 'desktop-pledges')
      }
    }
    await page.goBack()
    await page.waitForURL((url) => url.pathname === '/ledger')
    await page.getByRole('heading', { level: 1, name: 'Ledger' }).waitFor()

    await page.goto(new URL('/pledges', coordinator!.url).toString())
    await page.getByRole('heading', { level: 1, name: 'Pledges' }).waitFor()
    await page.goto(new URL('/no/such/page', coordinator!.url).toString())
    await page.getByTestId('not-found').waitFor()
  })

  test('at phone width (375px) every page fits without sideways scrolling', async () => {
    const phone = await browser!.newContext(PHONE_CONTEXT)
    await watchLayoutWidth(phone)
    try {
      const mobile = await phone.newPage()
      mobile.setDefaultTimeout(WAIT_MS)
      mobile.setDefaultNavigationTimeout(WAIT_MS)
      for (const { label, path, heading } of PAGES) {
        await mobile.goto(new URL(path, coordinator!.url).toString())
        await mobile.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor()
        const nav = mobile.getByRole('navigation', { name: 'Main' })
        for (const other of PAGES) assert.ok(await nav.getByRole('link', { name: other.label, exact: true }).isVisible(), `${other.label} visible on phone`)
        if (label === 'Nodes') {
          await mobile.getByTestId('node-row').first().waitFor()
          await mobile.getByText('How to enroll another machine').click()
          await mobile.locator('details[open]').waitFor()
        }
        if (label === 'Runs') await mobile.getByTestId('run-row').first().waitFor()
        await assertNoHorizontalScroll(mobile, `${path} at 375px`)
        await screenshot(mobile, `phone-${label.toLowerCase()}`)
      }
    } finally {
      await phone.close()
    }
  })

  test('when the coordinator goes away the page says so and keeps the last data', async () => {
    await page.goto(new URL('/nodes', coordinator!.url).toString())
    await page.getByTestId('node-row').first().waitFor()
    await coordinator!.stop()
    await page.getByTestId('stale-banner').waitFor()
    await page.locator('[data-testid="live-indicator"][data-state="reconnecting"]').waitFor()
    assert.ok(await page.getByTestId('node-row').count() >= 1, 'the last known nodes stay on screen')
    await screenshot(page, 'desktop-nodes-coordinator-down')
  })
})
