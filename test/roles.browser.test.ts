/*
 * Every kind of user, end to end, in a real browser against ONE real coordinator and a real
 * training agent: the first account (admin), a lab admin who enrolls a machine with a token
 * made in the page, an organizer who launches a run from the form (bad input first), a funder
 * who pledges, and a visitor who verifies the ledger and downloads a checkpoint. Screenshots
 * of every page for every role, at 1280 px and 375 px, land in test-artifacts/screenshots/.
 *
 * Needs the built dashboard (`pnpm --filter @barnraise/web build`) and Chromium at
 * /usr/bin/chromium (or CHROMIUM_PATH).
 */
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { startAgent, startCoordinator } from './support/cluster.ts'
import { DESKTOP_CONTEXT, PHONE_CONTEXT, SCREENSHOTS, launchChromium, screenshot, assertNoHorizontalScroll, watchLayoutWidth } from './support/browser.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { apiClient } from './support/api-client.ts'
import { allLedgerEntries } from './support/ledger-pages.ts'
import { waitForRun } from './support/runs.ts'

/** Longest we wait for anything the page should show. */
const WAIT_MS = 20_000
/** Longest we wait for training to produce something (rounds, checkpoints). */
const TRAIN_MS = 120_000
const PASSWORD = 'correct horse battery'

type Role = 'organizer' | 'lab_admin' | 'funder'

function setMarker (page: Page): Promise<void> {
  return page.evaluate(() => { (window as unknown as { marker: string }).marker = 'no-reload' })
}

async function assertNoReload (page: Page): Promise<void> {
  assert.equal(await page.evaluate(() => (window as unknown as { marker?: string }).marker), 'no-reload', 'the page reloaded')
}

/** Polls `read` until `ok` holds; fails with the last value. */
async function eventually<T> (read: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T
  for (;;) {
    last = await read()
    if (ok(last)) return last
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

describe('every role in a real browser, against one coordinator', { timeout: 600_000 }, () => {
  let coordinator: RunningCoordinator | undefined
  let agent: RunningAgent | undefined
  let browser: Browser | undefined
  const contexts: Partial<Record<'admin' | Role | 'visitor', BrowserContext>> = {}
  const pages: Partial<Record<'admin' | Role | 'visitor', Page>> = {}
  let runId = ''

  const url = (path: string): string => new URL(path, coordinator!.url).toString()

  async function newPage (who: 'admin' | Role | 'visitor'): Promise<Page> {
    const context = await browser!.newContext(DESKTOP_CONTEXT)
    contexts[who] = context
    const page = await context.newPage()
    page.setDefaultTimeout(WAIT_MS)
    page.setDefaultNavigationTimeout(WAIT_MS)
    page.on('pageerror', (err) => { process.stderr.write(`[${who} page error] ${err.message}\n`) })
    pages[who] = page
    return page
  }

  async function fieldError (page: Page, field: string): Promise<string> {
    const el = page.locator(`[data-testid="field-error"][data-field="${field}"]`)
    await el.waitFor()
    return await el.innerText()
  }

  async function signUp (page: Page, o: { role: Role, name: string, email: string, org?: string }): Promise<void> {
    await page.goto(url('/signup'))
    await page.getByTestId('signup-form').waitFor()
    await page.getByTestId(`role-${o.role}`).click()
    if (o.org !== undefined) await page.locator('#signup-org').fill(o.org)
    await page.locator('#signup-name').fill(o.name)
    await page.locator('#signup-email').fill(o.email)
    await page.locator('#signup-password').fill(PASSWORD)
    await page.getByTestId('signup-submit').click()
    await page.getByTestId('account-name').waitFor()
    assert.equal(await page.getByTestId('account-name').innerText(), o.name)
  }

  /** Desktop and phone screenshots of `path` as whoever `context` is signed in as. */
  async function shoot (who: 'admin' | Role | 'visitor', path: string, name: string, ready: (page: Page) => Promise<void>): Promise<void> {
    const page = pages[who]!
    await page.goto(url(path))
    await ready(page)
    await screenshot(page, `roles-${who}-${name}-desktop`)
    const phone = await browser!.newContext({ ...PHONE_CONTEXT, storageState: await contexts[who]!.storageState() })
    await watchLayoutWidth(phone)
    try {
      const mobile = await phone.newPage()
      mobile.setDefaultTimeout(WAIT_MS)
      await mobile.goto(url(path))
      await ready(mobile)
      await assertNoHorizontalScroll(mobile, `${path} as ${who} at 375px`)
      await screenshot(mobile, `roles-${who}-${name}-phone`)
    } finally {
      await phone.close()
    }
  }

  beforeAll(async () => {
    browser = await launchChromium(WAIT_MS)
    // An open community install: organizers sign themselves up. The invite-only default is
    // performed as an attack in attack-accounts.test.ts.
    coordinator = await startCoordinator({ args: ['--open-organizing'] })
  })

  afterAll(async () => {
    await browser?.close().catch(() => {})
    await agent?.stop().catch(() => {})
    await coordinator?.stop().catch(() => {})
  })

  test('a signed-out visitor who opens /runs/new or /labs is told to sign in', async () => {
    const page = await newPage('visitor')
    await page.goto(url('/runs/new'))
    const gate = page.getByTestId('auth-required')
    await gate.waitFor()
    assert.match(await gate.innerText(), /Sign in to launch a training run/)
    assert.equal(await page.getByTestId('launch-form').count(), 0)
    assert.equal(await gate.getByTestId('auth-required-signin').getAttribute('href'), '/signin?next=%2Fruns%2Fnew')
    await screenshot(page, 'roles-visitor-runs-new-gate-desktop')

    await page.goto(url('/labs'))
    await page.getByTestId('auth-required').waitFor()
    assert.match(await page.getByTestId('auth-required').innerText(), /Sign in to manage your lab’s machines/)
    assert.equal(await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Labs' }).count(), 0, 'no Labs tab for visitors')
    await page.getByTestId('nav-signin').waitFor()
    await screenshot(page, 'roles-visitor-labs-gate-desktop')

    // The gate's link leads to sign-in and back.
    await page.getByTestId('auth-required-signin').click()
    await page.waitForURL((u) => u.pathname === '/signin' && u.searchParams.get('next') === '/labs')
    await page.getByTestId('signin-form').waitFor()
    await page.getByTestId('signin-submit').click()
    assert.match(await fieldError(page, 'email'), /email/)
    assert.match(await fieldError(page, 'password'), /password/)
    await page.locator('#signin-email').fill('nobody@example.org')
    await page.locator('#signin-password').fill('not the password')
    await page.getByTestId('signin-submit').click()
    await page.getByTestId('form-error').waitFor()
    assert.match(await page.getByTestId('form-error').innerText(), /Wrong email or password/)
    await shoot('visitor', '/signin', 'signin', async (p) => { await p.getByTestId('signin-form').waitFor() })
    await shoot('visitor', '/runs/new', 'runs-new-gate', async (p) => { await p.getByTestId('auth-required').waitFor() })
    await shoot('visitor', '/labs', 'labs-gate', async (p) => { await p.getByTestId('auth-required').waitFor() })
  })

  test('the setup code the coordinator printed makes the first account the admin; the form checks every field inline', async () => {
    const page = await newPage('admin')
    await page.goto(url('/signup'))
    await page.getByTestId('signup-submit').click()
    assert.match(await fieldError(page, 'setupCode'), /setup code/)
    await page.goto(url(`/signup?setup=${coordinator!.setupCode!}`))
    await page.getByTestId('signup-submit').click()
    assert.match(await fieldError(page, 'role'), /choose what you want to do/)
    assert.match(await fieldError(page, 'displayName'), /your name/)
    assert.match(await fieldError(page, 'email'), /valid email/)
    assert.match(await fieldError(page, 'password'), /at least 10 characters/)
    await page.getByTestId('role-lab_admin').click()
    await page.getByTestId('signup-submit').click()
    assert.match(await fieldError(page, 'organization'), /organization/)
    await screenshot(page, 'roles-admin-signup-errors-desktop')
    await page.getByTestId('role-organizer').click()
    await page.locator('#signup-name').fill('Ada Admin')
    await page.locator('#signup-email').fill('ada@barnraise.test')
    await page.locator('#signup-password').fill('short')
    await page.getByTestId('signup-submit').click()
    assert.match(await fieldError(page, 'password'), /at least 10 characters/)
    await page.locator('#signup-password').fill(PASSWORD)
    await page.getByTestId('signup-submit').click()
    await page.getByTestId('account-name').waitFor()
    assert.equal(await page.getByTestId('account-role').innerText(), 'Admin')
    assert.match(await page.getByTestId('account-menu').getAttribute('data-roles') ?? '', /admin/)
    // Admins see every place, Labs included.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Labs', exact: true }).waitFor()
    await shoot('visitor', '/signup?role=lab_admin', 'signup', async (p) => { await p.getByTestId('signup-form').waitFor() })

    // Signing out and in again works from the account menu.
    await page.getByTestId('account-menu').getByRole('button').first().click()
    await page.getByTestId('sign-out').waitFor()
    await page.screenshot({ path: join(SCREENSHOTS, 'roles-admin-account-menu-desktop.png') })
    await page.getByTestId('sign-out').click()
    await page.getByTestId('nav-signin').waitFor()
    await page.getByTestId('nav-signin').click()
    await page.locator('#signin-email').fill('ada@barnraise.test')
    await page.locator('#signin-password').fill(PASSWORD)
    await page.getByTestId('signin-submit').click()
    await page.getByTestId('account-name').waitFor()
  })

  test('a lab admin creates a token in the page; a real agent joins with it and shows up on Labs and Nodes', async () => {
    const page = await newPage('lab_admin')
    await signUp(page, { role: 'lab_admin', name: 'Lin Labadmin', email: 'lin@hilltop.test', org: 'Hilltop Lab' })
    await page.waitForURL((u) => u.pathname === '/labs')
    assert.match(await page.getByTestId('account-role').innerText(), /Lab admin · Hilltop Lab/)
    await page.getByTestId('lab-overview').waitFor()
    await page.getByTestId('lab-nodes-empty').waitFor()
    await page.getByTestId('tokens-empty').waitFor()

    await page.locator('#token-uses').fill('0')
    await page.getByTestId('create-token').click()
    assert.match(await fieldError(page, 'maxUses'), /at least 1/)
    await page.locator('#token-label').fill('Rack A')
    await page.locator('#token-uses').fill('1')
    await page.getByTestId('create-token').click()
    const created = page.getByTestId('token-created')
    await created.waitFor()
    const command = (await created.getByTestId('join-command').locator('pre').innerText()).replace(/^\$\s*/, '').replace(/\s+/g, ' ').trim()
    const secret = await created.getByTestId('token-secret').innerText()
    const m = command.match(/^pnpm agent join --coordinator (\S+) --token (\S+)$/)
    assert.ok(m !== null, `join command: ${command}`)
    assert.equal(m[2], secret)
    assert.ok(await created.getByRole('button', { name: /Copy/ }).count() >= 1, 'a copy button')
    await page.locator('[data-testid="token-row"][data-state="active"]').waitFor()
    await screenshot(page, 'roles-lab_admin-token-created-desktop')

    // The exact command from the page enrolls a real machine; it appears without a reload.
    await setMarker(page)
    agent = await startAgent({ coordinator: m[1]!, token: m[2]!, name: 'hilltop-worker-1' })
    const row = page.locator(`[data-testid="lab-node-row"][data-peer-id="${agent.peerId}"]`)
    await row.waitFor()
    await row.locator('[data-testid="node-status"][data-online="true"]').waitFor()
    await page.locator('[data-testid="token-row"][data-state="used up"]').waitFor()
    await assertNoReload(page)

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Nodes', exact: true }).click()
    const nodeRow = page.locator(`[data-testid="node-row"][data-peer-id="${agent.peerId}"]`)
    await nodeRow.waitFor()
    assert.equal(await nodeRow.getByTestId('node-org').innerText(), 'Hilltop Lab')
    // The address arrives with the health query; wait for it rather than read the placeholder.
    await page.getByTestId('enroll-command').filter({ hasText: '--coordinator /ip4/' }).waitFor({ state: 'attached' })
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Labs', exact: true }).click()
    await row.waitFor()
  })

  test('an organizer’s bad input is caught inline and creates nothing; the good run is created and started', async () => {
    const page = await newPage('organizer')
    await signUp(page, { role: 'organizer', name: 'Olu Organizer', email: 'olu@runs.test' })
    await page.getByTestId('launch-run').click()
    await page.waitForURL((u) => u.pathname === '/runs/new')
    const form = page.getByTestId('launch-form')
    await form.waitFor()
    assert.equal(await page.getByTestId('preset-card').count(), 4)

    // Memory per node follows the recipe, live.
    await page.locator('[data-testid="preset-card"][data-preset="tiny"]').click()
    const tinyMemory = async (): Promise<string> => await page.locator('[data-testid="preset-card"][data-preset="tiny"] [data-testid="preset-memory"]').innerText()
    const before = await tinyMemory()
    await page.locator('#f-recipe-batchSize').fill('64')
    await eventually(tinyMemory, (t) => t !== before, 'memory estimate to change with batch size')

    const api = apiClient(coordinator!.url)
    // Bad input: no name and a 2-token sequence length.
    await page.locator('#f-name').fill('')
    await page.locator('#f-recipe-seqLen').fill('2')
    await page.getByTestId('create-and-start').click()
    assert.match(await fieldError(page, 'name'), /give the run a name/)
    assert.match(await fieldError(page, 'recipe.seqLen'), /at least 8/)
    await page.getByTestId('form-error-count').waitFor()
    assert.match(await page.getByTestId('form-error-count').innerText(), /Nothing was created/)
    assert.equal((await api.runs.list.query()).length, 0, 'no run was created')
    assert.equal(new URL(page.url()).pathname, '/runs/new')
    await screenshot(page, 'roles-organizer-launch-errors-desktop')

    // Fixing a field clears its message as you type.
    await page.locator('#f-recipe-seqLen').fill('32')
    assert.equal(await page.locator('[data-testid="field-error"][data-field="recipe.seqLen"]').count(), 0)
    await page.locator('#f-name').fill('Hilltop bible LM')

    // Uploaded text becomes shards; what only the server can know comes back inline too: this
    // text is too short for 512-token sequences.
    await page.getByTestId('dataset-upload').click()
    const text = Array.from({ length: 120 }, (_, i) => `Line ${i}: the quick brown fox jumps over the lazy dog.`).join('\n')
    await page.getByTestId('dataset-files').setInputFiles({ name: 'fox.txt', mimeType: 'text/plain', buffer: Buffer.from(text) })
    await page.getByTestId('dataset-upload-button').click()
    assert.match(await page.getByTestId('dataset-uploaded').innerText(), /1 training shard .* held out/)
    await page.locator('#f-recipe-seqLen').fill('512')
    await page.getByTestId('create-run').click()
    assert.match(await fieldError(page, 'recipe.seqLen'), /shorter than one training window/)
    assert.equal((await api.runs.list.query()).length, 0, 'still no run')
    // A JSONL dataset file with a BPE tokenizer: sent in pieces, tokenized on the coordinator,
    // its tokenizer shown on a sample line token by token.
    await page.getByTestId('dataset-file-choice').click()
    await page.getByTestId('token-pieces').waitFor()
    assert.ok(await page.locator('.token-piece').count() >= 8, 'the sample line is shown as tokens')
    const rows = Array.from({ length: 400 }, (_, i) => JSON.stringify({ text: `Row ${i}: the quick brown fox jumps over the lazy dog ${i % 7} times.` })).join('\n') + '\n{"oops": 1}\n'
    await page.getByTestId('dataset-file').setInputFiles({ name: 'fox.jsonl', mimeType: 'application/x-ndjson', buffer: Buffer.from(rows) })
    assert.equal(await page.getByTestId('dataset-format').inputValue(), 'jsonl')
    await page.getByTestId('dataset-file-start').click()
    await page.getByTestId('dataset-ready').waitFor({ timeout: 60_000 })
    assert.match(await page.getByTestId('dataset-counts').innerText(), /^400 documents · .* · 1 bad row$/)
    assert.match(await page.getByTestId('summary-epochs').innerText(), /^≈ \d/)
    await screenshot(page, 'roles-organizer-dataset-file-desktop')
    await page.getByTestId('dataset-demo').click()
    await page.locator('#f-recipe-seqLen').fill('32')
    assert.equal(await page.locator('[data-testid="field-error"][data-field="recipe.seqLen"]').count(), 0)
    await page.locator('#f-description').fill('A tiny model trained end to end by the browser test.')
    await page.locator('#f-recipe-innerSteps').fill('8')
    await page.locator('#f-recipe-batchSize').fill('4')
    await page.locator('#f-recipe-warmupSteps').fill('2')
    await page.getByText('Advanced: optimizer, codec, evaluation').click()
    // Slow links may send topk beside the run's int8; topk reports cannot be doubled, which the
    // form says on the codecs ticked; a run codec of topk leaves nothing smaller to tick.
    await page.getByTestId('slow-link-codec-topk').check()
    await page.locator('#f-defences-redundancy').fill('10')
    await page.getByTestId('create-and-start').click()
    assert.match(await fieldError(page, 'codecs'), /doubled units cannot check topk reports/)
    assert.equal((await api.runs.list.query()).length, 0, 'still no run')
    await page.locator('#f-defences-redundancy').fill('0')
    assert.equal(await page.locator('[data-testid="field-error"][data-field="codecs"]').count(), 0)
    await page.locator('#f-codec').selectOption('topk')
    assert.equal(await page.getByTestId('slow-link-codec-topk').count(), 0)
    await page.locator('#f-codec').selectOption('int8')
    assert.equal(await page.getByTestId('slow-link-codec-topk').isChecked(), false, 'a codec no longer smaller was unticked')
    await page.getByTestId('slow-link-codec-topk').check()
    await page.getByTestId('broadcast').selectOption('sparse')
    // Overlapped rounds with DiLoCo's long-run outer step draw a warning, gone once the lr is lowered.
    await page.getByTestId('overlap').selectOption('delayed')
    assert.match(await page.getByTestId('overlap-warning').innerText(), /outer lr 0\.7 and momentum 0\.9/)
    await page.locator('#f-recipe-outerLr').fill('0.5')
    await page.locator('#f-recipe-outerMomentum').fill('0')
    assert.equal(await page.getByTestId('overlap-warning').count(), 0)
    await page.getByTestId('overlap').selectOption('none')
    await page.locator('#f-recipe-outerLr').fill('0.7')
    await page.locator('#f-recipe-outerMomentum').fill('0.9')
    await page.locator('#f-evalBatches').fill('2')
    await page.locator('#f-rounds').fill('12')
    await page.locator('#f-minNodes').fill('1')
    await page.locator('#f-maxNodes').fill('4')
    await page.locator('#f-roundDeadlineSeconds').fill('30')
    await page.locator('#f-computeGoalGpuHours').fill('2')
    await page.locator('#f-fundingGoalUsd').fill('1000')
    assert.match(await page.getByTestId('tokens-per-round').innerText(), /8 × 4 × 32 = 1,024 tokens/)
    await screenshot(page, 'roles-organizer-launch-desktop')
    await page.getByTestId('create-and-start').click()
    await page.waitForURL((u) => /^\/runs\/[0-9a-f-]{36}$/.test(u.pathname))
    runId = new URL(page.url()).pathname.split('/').at(-1)!
    const runs = await api.runs.list.query()
    assert.equal(runs.length, 1)
    assert.equal(runs[0]!.id, runId)
    assert.equal(runs[0]!.name, 'Hilltop bible LM')
    const detail = await api.runs.get.query({ id: runId })
    assert.deepEqual(detail.spec.model, { preset: 'tiny' })
    assert.equal(detail.spec.recipe.seqLen, 32)
    assert.equal(detail.spec.rounds, 12)
    assert.equal(detail.spec.fundingGoalUsd, 1000)
    assert.equal(detail.spec.codec, 'int8')
    assert.deepEqual(detail.spec.codecs, ['int8', 'topk'])
    assert.equal(detail.spec.broadcast, 'sparse')
    await page.locator('[data-testid="run-page"][data-status="running"]').waitFor()
    await page.getByText('int8, or topk on slow links').waitFor()
    await page.getByText('sparse: a topk of each round’s mean').waitFor()
    await page.getByTestId('steer-pause').waitFor()
  })

  test('the run page updates while the run trains: the loss curve gains points without a reload', async () => {
    const page = pages.organizer!
    await setMarker(page)
    const points = page.locator('[data-testid="loss-point"]')
    const first = await eventually(async () => await points.count(), (n) => n >= 1, 'the first loss points', TRAIN_MS)
    await eventually(async () => await points.count(), (n) => n > first, 'more loss points', TRAIN_MS)
    await assertNoReload(page)
    assert.ok(await page.locator('[data-testid="loss-point"][data-series="train"]').count() >= 1, 'training loss plotted')
    await eventually(async () => await page.getByTestId('round-row').count(), (n) => n >= 2, 'two rounds in the timeline', TRAIN_MS)
    const nodeRow = page.locator(`[data-testid="run-node-row"][data-peer-id="${agent!.peerId}"]`)
    await nodeRow.waitFor()
    assert.match(await nodeRow.getByTestId('node-throughput').innerText(), /tok\/s/)
    assert.match(await nodeRow.getByTestId('node-first-report').innerText(), /^after \d+(\.\d)? s$|^after \d+ min/)
    // Its link: the rate the coordinator measured (none for reports too small to time) and the
    // codec of its latest unit, one the run allows (int8 unless the link was too slow for it).
    assert.match(await nodeRow.getByTestId('node-upload').innerText(), /^(—|\d+(\.\d)? (B|kB|MB|GB)\/s)$/)
    assert.match(await nodeRow.getByTestId('node-codec').innerText(), /^(int8|topk)$/)

    // The same points, plotted by tokens.
    const byRound = await points.count()
    await page.getByTestId('chart-axis-toggle').getByRole('radio', { name: 'By tokens' }).click()
    assert.ok(await points.count() >= byRound)
    await screenshot(page, 'roles-organizer-run-training-desktop')
    await page.getByTestId('chart-axis-toggle').getByRole('radio', { name: 'By round' }).click()

    // The organizer who created it pauses it (the funder pledges while it waits).
    await page.getByTestId('steer-pause').click()
    await page.locator('[data-testid="run-page"][data-status="paused"]').waitFor()
    await page.getByTestId('steer-resume').waitFor()
  })

  test('a funder pledges money and GPU-hours and sees them on the run page and the Pledges page', async () => {
    const page = await newPage('funder')
    // Her organization's machines deliver her compute pledges; she joins it with the lab admin's invitation.
    const lin = pages.lab_admin!
    await lin.goto(url('/labs'))
    await lin.getByTestId('lab-invitations').waitFor()
    await lin.getByTestId('invite-role').selectOption('funder')
    await lin.getByTestId('create-invite').click()
    const link = await lin.getByTestId('invite-link').innerText()
    await page.goto(link)
    await page.getByTestId('invited').waitFor()
    assert.equal(await page.locator('#signup-org').count(), 0, 'the organization comes with the invitation')
    await page.locator('#signup-name').fill('Fay Funder')
    await page.locator('#signup-email').fill('fay@fund.test')
    await page.locator('#signup-password').fill(PASSWORD)
    await page.getByTestId('signup-submit').click()
    await page.getByTestId('account-name').waitFor()
    await page.waitForURL((u) => u.pathname === '/pledges')
    await page.getByTestId('my-pledges-empty').waitFor()
    await page.locator(`[data-testid="back-run"][data-run-id="${runId}"]`).getByRole('link', { name: 'Open run to pledge' }).click()
    await page.waitForURL((u) => u.pathname === `/runs/${runId}`)
    await page.getByTestId('pledge-form').waitFor()
    assert.equal(await page.getByTestId('steer-controls').count(), 0, 'funders cannot steer')

    const organizer = pages.organizer!
    await setMarker(organizer)

    await page.getByTestId('pledge-submit').click()
    assert.match(await fieldError(page, 'amount'), /enter an amount/)
    await page.locator('#pledge-amount').fill('250')
    await page.locator('#pledge-note').fill('for the bible LM')
    await page.getByTestId('pledge-submit').click()
    await page.getByTestId('pledge-done').waitFor()
    await page.getByTestId('pledge-kind').getByRole('radio', { name: 'GPU-hours' }).click()
    await page.locator('#pledge-amount').fill('1.5')
    await page.getByTestId('pledge-submit').click()
    await page.locator('[data-testid="run-pledge"][data-kind="gpu_hours"]').waitFor()
    await page.locator('[data-testid="run-pledge"][data-kind="usd"][data-amount="250"]').waitFor()
    assert.match(await page.getByTestId('funding-meter').innerText(), /\$250\s*of \$1,000/)
    await page.getByTestId('support-card').scrollIntoViewIfNeeded()
    await screenshot(page, 'roles-funder-pledged-desktop')
    assert.match(await page.getByTestId('compute-pledged-meter').innerText(), /1\.50\s*of 2\.00 GPU-h/)

    // The organizer's open run page shows the pledges without a reload.
    await organizer.locator('[data-testid="funding-meter"][data-value="250"]').waitFor()
    await organizer.locator('[data-testid="compute-pledged-meter"][data-value="1.5"]').waitFor()
    await assertNoReload(organizer)

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Pledges', exact: true }).click()
    const mine = page.locator(`[data-testid="my-pledge-run"][data-run-id="${runId}"]`)
    await mine.waitFor()
    assert.equal(await page.getByTestId('my-usd').innerText(), '$250')
    assert.equal(await page.getByTestId('my-gpu-hours').innerText(), '1.50')
    assert.equal(await mine.getByTestId('my-pledge').count(), 2)
    const gpuPledge = mine.locator('[data-testid="my-pledge"][data-kind="gpu_hours"]')
    assert.match(await gpuPledge.getByTestId('pledge-delivered').innerText(), /of 1\.50 GPU-h/)
    assert.equal(await gpuPledge.getAttribute('data-fulfilled'), 'false', 'Hilltop Lab’s CPU machine delivers no GPU-hours')
    assert.match(await mine.getByTestId('run-funding-goal').innerText(), /\$250\s*of \$1,000/)
  })

  test('anyone verifies the ledger in the browser, sees a tampered row named, and downloads checkpoint files', async () => {
    // The organizer resumes the run, lets it train a few more rounds, then stops it for good.
    const organizer = pages.organizer!
    await organizer.getByTestId('steer-resume').click()
    await organizer.locator('[data-testid="run-page"][data-status="running"]').waitFor()
    const rounds = await organizer.getByTestId('round-row').count()
    await eventually(async () => await organizer.locator('[data-testid="round-row"][data-status="closed"]').count(), (n) => n >= rounds + 2, 'more rounds to close', TRAIN_MS)
    await organizer.getByTestId('steer-stop').click()
    await organizer.getByTestId('steer-stop-confirm').click()
    await organizer.locator('[data-testid="run-page"][data-status="completed"]').waitFor()
    await waitForRun(coordinator!.url, runId, (r) => r.status === 'completed', WAIT_MS)
    // A report in flight when the run was stopped is still refused onto the ledger a moment
    // later: the visitor looks once the ledger has stopped growing, so page and exports agree.
    for (let rows = -1, settled = 0; settled < 2;) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const now = (await allLedgerEntries(apiClient(coordinator!.url), runId)).length
      settled = now === rows ? settled + 1 : 0
      rows = now
    }
    const page = pages.visitor!
    await page.goto(url('/ledger'))
    await page.getByTestId('nav-ledger').waitFor()
    await page.locator(`[data-testid="ledger-run-row"][data-run-id="${runId}"]`).getByRole('link', { name: 'Hilltop bible LM' }).click()
    await page.waitForURL((u) => u.pathname === `/ledger/${runId}`)
    const orgRow = page.getByTestId('contrib-org-row')
    await orgRow.first().waitFor()
    assert.match(await orgRow.first().innerText(), /Hilltop Lab/)

    // Sort by clicking headers; filter by text.
    const orgs = page.getByTestId('contrib-orgs')
    assert.equal(await orgs.getAttribute('data-sort'), 'tokens:desc')
    await orgs.getByTestId('sort-tokens').click()
    assert.equal(await orgs.getAttribute('data-sort'), 'tokens:asc')
    await page.getByTestId('contrib-view').getByRole('radio', { name: 'By node' }).click()
    await page.locator('[data-testid="contrib-node-row"]').first().waitFor()
    assert.match(await page.getByTestId('contrib-nodes').innerText(), /hilltop-worker-1/)
    await page.getByTestId('ledger-filter').fill('no-such-node')
    await page.getByText('No node matches').waitFor()
    await page.getByTestId('ledger-filter').fill('hilltop')
    await page.locator('[data-testid="contrib-node-row"]').first().waitFor()
    await page.getByTestId('ledger-filter').fill('')

    const entries = await allLedgerEntries(apiClient(coordinator!.url), runId)
    assert.ok(entries.length >= 4, `ledger rows: ${entries.length}`)
    // Entries are numbered within the run (newest first, so the top row is the last number) and
    // named by their node; the peer id is on hover.
    const top = page.getByTestId('ledger-row').first()
    assert.equal(await top.getByTestId('entry-number').innerText(), `#${entries.length}`)
    assert.equal(await top.getByTestId('entry-node').innerText(), 'hilltop-worker-1')
    assert.equal(await top.getByTestId('entry-node').getAttribute('title'), `peer ${entries.at(-1)!.peerId}`)
    await page.getByTestId('verify-ledger').click()
    const verdict = page.getByTestId('verify-result')
    await verdict.waitFor()
    assert.equal(await verdict.getAttribute('data-ok'), 'true')
    assert.match(await verdict.innerText(), new RegExp(`${entries.length} rows verified`))
    await screenshot(page, 'roles-visitor-ledger-verified-desktop')

    // Exports are real files.
    const csvHref = await page.getByTestId('export-csv').getAttribute('href')
    const csv = await fetch(url(csvHref!))
    assert.equal(csv.status, 200)
    assert.equal((await csv.text()).trim().split('\r\n').length, entries.length + 1)
    const jsonHref = await page.getByTestId('export-json').getAttribute('href')
    assert.equal((await (await fetch(url(jsonHref!))).json() as unknown[]).length, entries.length)

    // A tampered row (as a compromised server might send it) is named by seq and reason.
    const target = entries[Math.floor(entries.length / 2)]!
    await page.route('**/trpc/**', async (route) => {
      const request = route.request()
      const procedures = new URL(request.url()).pathname.replace(/^\/trpc\//, '').split(',')
      const index = procedures.indexOf('ledger.entries')
      if (index === -1) { await route.continue(); return }
      const response = await route.fetch()
      // A page of rows (ledger.entries pages the ledger; the button reads every page afresh).
      const body = await response.json() as Array<{ result?: { data: { entries: Array<{ seq: number, tokens: number }> } } }>
      const rows = body[index]?.result?.data.entries
      const row = rows?.find((r) => r.seq === target.seq)
      if (row !== undefined) row.tokens += 1
      await route.fulfill({ response, json: body })
    })
    await page.getByTestId('verify-ledger').click()
    await page.locator(`[data-testid="verify-result"][data-ok="false"][data-seq="${target.seq}"]`).waitFor()
    const position = entries.findIndex((e) => e.seq === target.seq) + 1
    assert.match(await page.getByTestId('verify-result').innerText(), new RegExp(`entry #${position} of ${entries.length} \\(ledger seq ${target.seq}\\).*hash does not match`))
    await screenshot(page, 'roles-visitor-ledger-tampered-desktop')
    await page.unroute('**/trpc/**')

    // Checkpoint downloads from the run page.
    await page.goto(url(`/runs/${runId}`))
    await page.locator('[data-testid="run-page"][data-status="completed"]').waitFor()
    const latest = page.getByTestId('checkpoint-row').first()
    await latest.waitFor()
    const sha = await latest.getAttribute('data-sha')
    assert.match(sha ?? '', /^[0-9a-f]{64}$/)
    const modelHref = await latest.locator('[data-testid="checkpoint-file"][data-file="model.safetensors"]').getAttribute('href')
    assert.equal(modelHref, `/api/checkpoints/${sha}/model.safetensors`)
    const model = await fetch(url(modelHref!))
    assert.equal(model.status, 200)
    const bytes = (await model.arrayBuffer()).byteLength
    assert.ok(bytes > 100_000, `model.safetensors is ${bytes} bytes`)
    assert.equal(Number(model.headers.get('content-length')), bytes)
    const configHref = await latest.locator('[data-testid="checkpoint-file"][data-file="config.json"]').getAttribute('href')
    const config = await (await fetch(url(configHref!))).json() as { hidden_size: number }
    assert.equal(config.hidden_size, 64)
    const snippets = page.getByTestId('checkpoint-snippets')
    assert.match(await snippets.getByTestId('snippet-python').innerText(), /AutoModelForCausalLM\.from_pretrained\("\.\/ckpt"\)/)
    assert.match(await snippets.getByTestId('snippet-shell').innerText(), new RegExp(`curl -fL -o ckpt/model.safetensors .*/api/checkpoints/${sha}/model.safetensors`))
    assert.equal(await page.getByTestId('pledge-signin').count() + await page.getByText('no longer takes pledges').count(), 1)
  })

  test('every page, for every role, at 1280px and 375px', async () => {
    const runPath = `/runs/${runId}`
    const ready = {
      runs: async (p: Page) => { await p.getByTestId('run-row').first().waitFor() },
      run: async (p: Page) => { await p.locator('[data-testid="loss-point"]').first().waitFor(); await p.getByTestId('checkpoint-row').first().waitFor() },
      nodes: async (p: Page) => { await p.getByTestId('node-row').first().waitFor() },
      ledger: async (p: Page) => { await p.getByTestId('contrib-org-row').first().waitFor(); await p.getByTestId('ledger-row').first().waitFor() },
      pledges: async (p: Page) => { await p.getByRole('heading', { level: 1, name: 'Pledges' }).waitFor(); await p.getByTestId('pledges-explainer').or(p.getByTestId('my-pledges')).waitFor() }
    }
    const common = [
      { path: '/runs', name: 'runs', ready: ready.runs },
      { path: runPath, name: 'run', ready: ready.run },
      { path: '/nodes', name: 'nodes', ready: ready.nodes },
      { path: `/ledger/${runId}`, name: 'ledger', ready: ready.ledger },
      { path: '/pledges', name: 'pledges', ready: ready.pledges }
    ]
    for (const who of ['visitor', 'admin', 'organizer', 'lab_admin', 'funder'] as const) {
      for (const p of common) await shoot(who, p.path, p.name, p.ready)
    }
    await shoot('organizer', '/runs/new', 'launch', async (p) => { await p.getByTestId('preset-card').first().waitFor() })
    await shoot('lab_admin', '/labs', 'labs', async (p) => { await p.getByTestId('lab-node-row').first().waitFor() })
    await shoot('admin', '/labs', 'labs', async (p) => { await p.getByTestId('no-organization').or(p.getByTestId('lab-overview')).waitFor() })
    await shoot('funder', '/labs', 'labs-role-required', async (p) => { await p.getByTestId('role-required').waitFor() })
    await shoot('visitor', '/ledger', 'ledger-pick', async (p) => { await p.getByTestId('ledger-run-row').first().waitFor() })
  })
})
