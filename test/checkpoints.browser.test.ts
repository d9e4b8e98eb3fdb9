/*
 * The run page's checkpoint section in a real browser, after a real run with retention: the
 * stable latest address, kept checkpoints with file sizes and buttons that say what they do,
 * pruned ones marked (consecutive ones folded into one row), a real .tar download, copied curl
 * commands, and phone width. Screenshots land in test-artifacts/screenshots/checkpoints-*.png.
 *
 * Needs the built dashboard (`pnpm --filter @barnraise/web build`) and Chromium.
 */
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { startAgent, startCoordinator, tempDir } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { SCREENSHOTS, launchChromium, assertNoHorizontalScroll, watchLayoutWidth } from './support/browser.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import pg from 'pg'
import { createTestDatabase } from './support/postgres.ts'
// The dashboard's own byte format, so the test compares with what the page prints.
import { formatBytes } from '../web/src/lib/format.ts'

const WAIT_MS = 20_000
const DESKTOP = { viewport: { width: 1280, height: 900 }, colorScheme: 'light', reducedMotion: 'reduce' } as const
const PHONE = { viewport: { width: 390, height: 844 }, colorScheme: 'light', reducedMotion: 'reduce', isMobile: true, hasTouch: true } as const

interface Listed { round: number, sha256: string, status: string, files: Array<{ name: string, size: number, url: string }>, tar: { name: string, size: number, url: string } | null }

/** The whole page, and one part alone (clipped from the page, so the sticky header stays out of it). */
async function screenshot (page: Page, name: string, part = 'checkpoints-section'): Promise<void> {
  await page.evaluate(() => { window.scrollTo(0, 0) })
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
  const box = (await page.getByTestId(part).boundingBox())!
  await page.screenshot({ path: join(SCREENSHOTS, `${name}-part.png`), fullPage: true, clip: box })
}

describe('run page checkpoints in a real browser', { timeout: 240_000 }, () => {
  let coordinator: RunningCoordinator | undefined
  let agent: RunningAgent | undefined
  let browser: Browser | undefined
  let runId: string
  let listed: Listed[]

  let dropDatabase: (() => Promise<void>) | undefined
  let databaseUrl: string

  beforeAll(async () => {
    browser = await launchChromium(WAIT_MS)
    // Postgres: the coordinator starts faster than with embedded PGlite.
    const database = await createTestDatabase()
    dropDatabase = database.drop
    databaseUrl = database.url
    const env = { DATABASE_URL: database.url }
    coordinator = await startCoordinator({ env })
    agent = await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Browser Lab'), name: 'browser-ckpt' })
    runId = await createRunViaCli(coordinator.dataDir, tinyRunSpec({
      name: 'Browser checkpoints',
      rounds: 5,
      license: 'cc-by-4.0',
      retention: { keepEvery: 3 },
      recipe: { innerSteps: 4, batchSize: 2, seqLen: 16, innerLr: 0.003, warmupSteps: 1 }
    }), env)
    await waitForRun(coordinator.url, runId, (r) => r.status === 'completed')
    listed = await getJson<Listed[]>(coordinator.url, `api/runs/${runId}/checkpoints`)
  })

  afterAll(async () => {
    await browser?.close().catch(() => {})
    await agent?.stop().catch(() => {})
    await coordinator?.stop().catch(() => {})
    await dropDatabase?.()
  })

  test('desktop: latest address, kept checkpoints with sizes and labelled buttons, pruned ones marked; the tar downloads', async () => {
    const context = await browser!.newContext(DESKTOP)
    try {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(coordinator!.url).origin })
      const page = await context.newPage()
      page.setDefaultTimeout(WAIT_MS)
      await page.goto(new URL(`/runs/${runId}`, coordinator!.url).toString())
      const section = page.getByTestId('checkpoints-section')
      await section.getByTestId('checkpoints-table').waitFor()
      const origin = new URL(coordinator!.url).origin

      // Newest first; kept rows are whole, pruned rounds 4 and 1–2 are folded rows that say why.
      const kept = section.getByTestId('checkpoint-row')
      assert.deepEqual(await kept.evaluateAll((rows) => rows.map((r) => Number(r.getAttribute('data-round')))), [5, 3, 0])
      const pruned = section.getByTestId('checkpoint-pruned')
      assert.deepEqual(await pruned.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-rounds'))), ['4', '1,2'])
      assert.match(await pruned.nth(1).innerText(), /Rounds 1–2\s+Pruned/)
      assert.match(await pruned.nth(1).innerText(), /Weights of 2 checkpoints deleted by retention \(this run keeps round 0, every 3rd round and the latest\); losses and ledger rows stay\./)
      assert.equal(await pruned.locator('a, button').count(), 0, 'nothing to download from a pruned row')

      const latestRow = kept.first()
      const latest = listed.find((c) => c.round === 5)!
      assert.equal(await latestRow.getAttribute('data-sha'), latest.sha256)
      assert.equal(await latestRow.getByTestId('checkpoint-latest-badge').innerText(), 'Latest')
      // Every file, with its size as the API lists it.
      const files = latestRow.getByTestId('checkpoint-file')
      assert.deepEqual(await files.evaluateAll((as) => as.map((a) => a.getAttribute('data-file'))), latest.files.map((f) => f.name))
      assert.deepEqual(await files.evaluateAll((as) => as.map((a) => a.getAttribute('href'))), latest.files.map((f) => f.url))
      assert.deepEqual(await latestRow.getByTestId('checkpoint-file-size').allInnerTexts(), latest.files.map((f) => formatBytes(f.size)))
      assert.ok(latest.files.map((f) => f.name).includes('README.md'))

      // The buttons say what they do.
      const tarLink = latestRow.getByTestId('checkpoint-tar')
      assert.equal((await tarLink.innerText()).trim(), `Download folder (.tar, ${formatBytes(latest.tar!.size)})`)
      assert.equal(await tarLink.getAttribute('href'), latest.tar!.url)
      const [download] = await Promise.all([page.waitForEvent('download'), tarLink.click()])
      assert.equal(download.suggestedFilename(), 'browser-checkpoints-round-5.tar')
      const saved = join(await tempDir('browser-tar'), download.suggestedFilename())
      await download.saveAs(saved)
      assert.equal((await stat(saved)).size, latest.tar!.size)

      const copy = latestRow.getByTestId('checkpoint-copy-curl')
      assert.equal((await copy.innerText()).trim(), 'Copy curl commands')
      await copy.click()
      await latestRow.locator('[data-testid="checkpoint-copy-curl"][data-copied="true"]').waitFor()
      assert.equal((await copy.innerText()).trim(), 'Curl commands copied')
      const clipboard = await page.evaluate(async () => await navigator.clipboard.readText())
      assert.equal(clipboard.split('\n')[0], 'mkdir -p ckpt')
      for (const f of latest.files) assert.ok(clipboard.includes(`curl -fL -o ckpt/${f.name} ${origin}${f.url}`), f.name)

      // The stable address, the retention setting and the licence.
      const latestBox = section.getByTestId('checkpoint-latest')
      assert.match(await latestBox.innerText(), /serves round 5 now/)
      assert.equal(await latestBox.getByTestId('latest-command').locator('pre').innerText(), `$ curl -fL ${origin}/api/runs/${runId}/checkpoints/latest/folder.tar | tar -x`)
      assert.match(await latestBox.getByTestId('retention-note').innerText(), /keeps round 0, every 3rd round and the latest.* 3 checkpoints pruned so far\. Licence: cc-by-4\.0\./)

      // Loading code follows the chosen checkpoint.
      const snippets = section.getByTestId('checkpoint-snippets')
      assert.equal(await snippets.getAttribute('data-sha'), latest.sha256)
      const round3 = kept.nth(1)
      assert.equal((await round3.getByTestId('checkpoint-show-code').innerText()).trim(), 'Show loading code')
      await round3.getByTestId('checkpoint-show-code').click()
      const sha3 = listed.find((c) => c.round === 3)!.sha256
      await section.locator(`[data-testid="checkpoint-snippets"][data-sha="${sha3}"]`).waitFor()
      assert.equal((await round3.getByTestId('checkpoint-show-code').innerText()).trim(), 'Loading code shown below')
      const shell = await snippets.getByTestId('snippet-shell').innerText()
      assert.ok(shell.includes(`curl -fL ${origin}/api/checkpoints/${sha3}/folder.tar | tar -x`))
      assert.ok(shell.includes('unpacks into ./browser-checkpoints-round-3/'))
      await assertNoHorizontalScroll(page, 'run page at 1280px')
      await screenshot(page, 'checkpoints-desktop')
    } finally {
      await context.close()
    }
  })

  test('the launch form sets retention and licence in its advanced section, checked by the spec schema', async () => {
    const context = await browser!.newContext(DESKTOP)
    try {
      const page = await context.newPage()
      page.setDefaultTimeout(WAIT_MS)
      // The setup code the coordinator printed makes this first account its admin, which may launch runs.
      await page.goto(new URL(`/signup?setup=${coordinator!.setupCode!}`, coordinator!.url).toString())
      await page.getByTestId('signup-form').waitFor()
      await page.getByTestId('role-organizer').click()
      await page.locator('#signup-name').fill('Olga Organizer')
      await page.locator('#signup-email').fill('olga@checkpoints.test')
      await page.locator('#signup-password').fill('correct horse battery staple')
      await page.getByTestId('signup-submit').click()
      await page.getByTestId('account-name').waitFor()
      await page.goto(new URL('/runs/new', coordinator!.url).toString())
      await page.getByTestId('launch-form').waitFor()
      await page.getByText('Advanced: optimizer, codec, evaluation, checkpoints').click()
      const keepEvery = page.getByLabel('Keep every Nth checkpoint')
      assert.equal(await keepEvery.inputValue(), '10', 'the schema default')
      assert.equal(await page.getByLabel('Licence of the weights').inputValue(), 'apache-2.0')
      await keepEvery.fill('0')
      await page.getByLabel('Licence of the weights').fill('Apache 2')
      await page.locator('#f-name').fill('Launch form retention')
      await page.getByTestId('create-run').click()
      const errors = page.getByTestId('field-error')
      await page.locator('[data-testid="field-error"][data-field="retention.keepEvery"]').waitFor()
      assert.equal(await page.locator('[data-testid="field-error"][data-field="retention.keepEvery"]').innerText(), 'must be at least 1 (1 keeps every checkpoint)')
      assert.match(await page.locator('[data-testid="field-error"][data-field="license"]').innerText(), /use a Hugging Face licence id such as apache-2\.0/)
      assert.equal(await errors.count(), 2)
      await screenshot(page, 'checkpoints-launch-form-desktop', 'launch-form')
      await keepEvery.fill('25')
      await page.getByLabel('Licence of the weights').fill('mit')
      await page.getByTestId('create-run').click()
      await page.getByTestId('run-page').waitFor()
      const created = await getJson<Array<{ id: string, name: string }>>(coordinator!.url, 'api/runs')
      const id = created.find((r) => r.name === 'Launch form retention')!.id
      await page.locator('[data-testid="retention-note"][data-keep-every="25"]').waitFor()
      assert.match(await page.getByTestId('retention-note').innerText(), /every 25th round and the latest.*Licence: mit\./)
      assert.equal((await getJson<{ status: string }>(coordinator!.url, `api/runs/${id}/checkpoints/latest`)).status, 'available')
    } finally {
      await context.close()
    }
  })

  test('a run with more checkpoints than one listing gives: the page loads the newest, counts them all, and links to the full list', async () => {
    // A long history written straight into the database: 520 pruned rounds after the run's round 0.
    const client = new pg.Client({ connectionString: databaseUrl })
    await client.connect()
    let longId: string
    try {
      longId = (await client.query<{ id: string }>(`insert into runs (name, spec, updated_at, status, current_round, latest_checkpoint)
        select 'Long history', spec, now(), 'completed', 520, latest_checkpoint from runs where id = $1 returning id`, [runId])).rows[0]!.id
      await client.query(`insert into checkpoints (sha256, run_id, round, tokens_seen, val_loss, pruned_at)
        select $2, $1::uuid, 0, 0, 5.5, null union all
        select md5(g::text) || md5((g + 1)::text), $1::uuid, g, g * 64, 5.5 - g / 1000.0, now() from generate_series(1, 520) g`, [longId, listed[0]!.sha256])
    } finally {
      await client.end()
    }
    const context = await browser!.newContext(DESKTOP)
    try {
      const page = await context.newPage()
      page.setDefaultTimeout(WAIT_MS)
      await page.goto(new URL(`/runs/${longId}`, coordinator!.url).toString())
      const section = page.getByTestId('checkpoints-section')
      await section.getByTestId('checkpoints-table').waitFor()
      assert.match(await section.getByTestId('retention-note').innerText(), /520 checkpoints pruned so far/, 'counted over every checkpoint, not the page loaded')
      await section.getByRole('button', { name: 'Show all 521 checkpoints' }).click()
      const older = section.getByTestId('checkpoints-older')
      await older.waitFor()
      assert.equal(await older.innerText(), `The newest 500 are listed here; all 521 are at /api/runs/${longId}/checkpoints, 500 at a time.`)
      assert.equal(await older.getByRole('link').getAttribute('href'), `/api/runs/${longId}/checkpoints`)
    } finally {
      await context.close()
    }
  })

  test('phone (390px): the section fits, shows the first rows, and expands to all', async () => {
    const context = await browser!.newContext(PHONE)
    await watchLayoutWidth(context)
    try {
      const page = await context.newPage()
      page.setDefaultTimeout(WAIT_MS)
      await page.goto(new URL(`/runs/${runId}`, coordinator!.url).toString())
      const section = page.getByTestId('checkpoints-section')
      await section.getByTestId('checkpoints-table').waitFor()
      assert.equal(await section.locator('[data-testid="checkpoint-row"], [data-testid="checkpoint-pruned"]').count(), 3, 'round 5, pruned 4, round 3')
      const tarLink = section.getByTestId('checkpoint-tar').first()
      assert.ok(await tarLink.isVisible())
      const box = (await tarLink.boundingBox())!
      assert.ok(box.x >= 0 && box.x + box.width <= 390, `the download button fits: ${JSON.stringify(box)}`)
      await assertNoHorizontalScroll(page, 'run page at 390px')
      await screenshot(page, 'checkpoints-phone')
      await section.getByRole('button', { name: 'Show all 6 checkpoints' }).click()
      assert.equal(await section.locator('[data-testid="checkpoint-row"], [data-testid="checkpoint-pruned"]').count(), 5)
      await assertNoHorizontalScroll(page, 'all checkpoints at 390px')
      await screenshot(page, 'checkpoints-phone-all')
    } finally {
      await context.close()
    }
  })
})
