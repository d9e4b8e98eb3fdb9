/*
 * A dataset file from the launch form, in a real browser against a real coordinator and agent:
 * the organizer uploads a tokenizer.json (a bad one first: refused under its control, nothing
 * changes), sends a JSONL file of three pieces with it; the upload stops after one piece and
 * carries on when tried again, then loses the connection after two pieces; the organizer reloads
 * the page, picks the same file again and the upload carries on from the bytes the coordinator
 * kept: every byte crosses the wire once. A run trained on that dataset lists each
 * checkpoint's documents (CSV and JSON for that round), at desktop and phone width; a run on the
 * demo corpus lists none.
 *
 * Needs the built dashboard (`pnpm --filter @barnraise/web build`) and Chromium.
 */
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page, Route } from 'playwright-core'
import { catalogTokenizer, uploadedTokenizerName } from '@barnraise/datasets'
import { startAgent, startCoordinator, tempDir } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { DESKTOP_CONTEXT, SCREENSHOTS, launchChromium, screenshot, assertNoHorizontalScroll, watchLayoutWidth } from './support/browser.ts'
import { sessionClientWithCookie } from './support/session-client.ts'
import { apiClient } from './support/api-client.ts'
import { getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
// The page's piece size, so the test knows where the pieces fall.
import { PIECE_BYTES } from '../web/src/lib/piece-upload.ts'

const WAIT_MS = 20_000
const PHONE = { viewport: { width: 390, height: 844 }, colorScheme: 'light', reducedMotion: 'reduce', isMobile: true, hasTouch: true } as const
const PIECE_PATH = /\/api\/datasets\/[0-9a-f-]{36}\/file$/
const RANGE = /^bytes (\d+)-(\d+)\/(\d+)$/

/** One part of the page alone, where a whole-page shot would make it too small to judge. */
async function partScreenshot (page: Page, testId: string, name: string): Promise<void> {
  // Clipped from the whole page taken from the top, so the sticky header stays out of it.
  await page.evaluate(() => { window.scrollTo(0, 0) })
  const box = (await page.getByTestId(testId).boundingBox())!
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true, clip: box })
}

interface Provenance { round: number, documents: Array<{ locator: string }> }

describe('a dataset file and its tokenizer from the launch form, resumed after a reload; each checkpoint lists its documents', { timeout: 600_000 }, () => {
  let coordinator: RunningCoordinator | undefined
  let agent: RunningAgent | undefined
  let browser: Browser | undefined
  let context: BrowserContext
  let page: Page
  let dataPath = ''
  let fileBytes = 0
  let tokenizerName = ''
  let runId = ''

  const url = (path: string): string => new URL(path, coordinator!.url).toString()

  beforeAll(async () => {
    browser = await launchChromium(WAIT_MS)
    coordinator = await startCoordinator({ args: ['--open-organizing'] })
    const admin = sessionClientWithCookie(coordinator.url)
    await admin.client.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', setupCode: coordinator.setupCode! })

    // Three pieces (8 + 8 + the rest MiB): each row carries a wide field the reader skips, so the
    // file is large while the text to tokenize stays small.
    const dir = await tempDir('dataset-upload')
    const pad = 'x'.repeat(1900)
    const rows: string[] = []
    for (let i = 0; rows.join('\n').length < 2 * PIECE_BYTES + 3_000_000; i++) {
      for (let j = 0; j < 500; j++, i++) rows.push(JSON.stringify({ id: i, pad, text: `Row ${i}: the quick brown fox jumps over the lazy dog ${i % 11} times, and the dog sleeps.` }))
    }
    dataPath = join(dir, 'fox.jsonl')
    const text = rows.join('\n') + '\n'
    await writeFile(dataPath, text)
    fileBytes = Buffer.byteLength(text)
    assert.ok(fileBytes > 2 * PIECE_BYTES && fileBytes < 3 * PIECE_BYTES, 'three pieces')

    context = await browser.newContext(DESKTOP_CONTEXT)
    page = await context.newPage()
    page.setDefaultTimeout(WAIT_MS)
    page.on('pageerror', (err) => { process.stderr.write(`[page error] ${err.message}\n`) })
    await page.goto(url('/signup'))
    await page.getByTestId('signup-form').waitFor()
    await page.getByTestId('role-organizer').click()
    await page.locator('#signup-name').fill('Dana Data')
    await page.locator('#signup-email').fill('dana@runs.test')
    await page.locator('#signup-password').fill('correct horse battery')
    await page.getByTestId('signup-submit').click()
    await page.getByTestId('account-name').waitFor()
  })

  afterAll(async () => {
    await browser?.close().catch(() => {})
    await agent?.stop().catch(() => {})
    await coordinator?.stop().catch(() => {})
  })

  async function openFileForm (): Promise<void> {
    await page.goto(url('/runs/new'))
    await page.getByTestId('launch-form').waitFor()
    await page.getByTestId('dataset-file-choice').click()
    await page.getByTestId('token-pieces').waitFor()
  }

  test('a bad tokenizer.json is refused under its control and changes nothing; a good one becomes the dataset\'s tokenizer', async () => {
    await openFileForm()
    const select = page.getByTestId('dataset-tokenizer')
    const optionsBefore = await select.locator('option').count()
    const before = await select.inputValue()
    await page.getByTestId('tokenizer-file').setInputFiles({ name: 'broken.tokenizer.json', mimeType: 'application/json', buffer: Buffer.from('{"model": {"type": "BPE"}, "added_tokens": "none"}') })
    const error = page.locator('[data-testid="field-error"][data-field="tokenizer"]')
    await error.waitFor()
    assert.match(await error.innerText(), /^broken\.tokenizer\.json was refused: .+/)
    assert.equal(await select.inputValue(), before, 'the chosen tokenizer is unchanged')
    assert.equal(await select.locator('option').count(), optionsBefore, 'no tokenizer was added')
    await partScreenshot(page, 'dataset-file-box', 'dataset-upload-bad-tokenizer')

    const good = Buffer.from(JSON.stringify(catalogTokenizer('gpt2-1k').huggingFaceFiles(256).get('tokenizer.json')))
    tokenizerName = uploadedTokenizerName(good)
    await page.getByTestId('tokenizer-file').setInputFiles({ name: 'tokenizer.json', mimeType: 'application/json', buffer: good })
    await page.waitForFunction((name) => (document.querySelector('[data-testid="dataset-tokenizer"]') as HTMLSelectElement | null)?.value === name, tokenizerName)
    assert.equal(await error.count(), 0, 'the error went with the good file')
    assert.match(await select.locator('option:checked').innerText(), /^tokenizer\.json \(1,025\)$/)
    assert.match(await page.locator('#f-dataset-tokenizer-hint').innerText(), /stored as sha256:[0-9a-f]{12}…; vocabulary 1,025/)
    // The sample line is now tokenized by the uploaded file (the same vocabulary as gpt2-1k).
    await page.getByTestId('token-pieces').waitFor()
    // A preview may parse an uploaded tokenizer.json (up to 32 MiB): organizers only.
    await assert.rejects(apiClient(coordinator!.url).datasets.preview.query({ tokenizer: tokenizerName, text: 'x' }), /sign in first/)
    const root = sessionClientWithCookie(coordinator!.url)
    await root.client.auth.signIn.mutate({ email: 'root@example.org', password: 'root-password-1' })
    const preview = await root.client.datasets.preview.query({ tokenizer: tokenizerName, text: await page.locator('#f-tokenizer-sample').inputValue() })
    assert.equal(preview.vocabSize, 1025)
    await page.waitForFunction((n) => document.querySelectorAll('.token-piece').length === n, preview.pieces.length)
  })

  test('an upload cut off after two pieces and a reload carries on from what the coordinator kept; every byte is sent once', async () => {
    // Pieces reaching the coordinator, and those cut off, by range; while `down`, every piece is
    // cut off. The second piece is first refused on the way (as a proxy might), which stops the upload.
    const reached: Array<[number, number]> = []
    const cut: Array<[number, number]> = []
    let refused = false
    let down = false
    let cutOff!: () => void
    const wasCut = new Promise<void>((resolve) => { cutOff = resolve })
    const statuses: number[] = []
    page.on('response', (res) => { if (PIECE_PATH.test(new URL(res.url()).pathname)) statuses.push(res.status()) })
    await page.route(PIECE_PATH, async (route: Route) => {
      const m = RANGE.exec((await route.request().allHeaders())['content-range'] ?? '')
      assert.ok(m !== null, 'a piece names its range')
      const range: [number, number] = [Number(m[1]), Number(m[2]) + 1]
      if (range[0] === PIECE_BYTES && !refused) {
        refused = true
        await route.fulfill({ status: 400, contentType: 'application/json', body: JSON.stringify({ code: 'ERR_INVALID_INPUT', error: 'a proxy refused this piece' }) })
        return
      }
      if (range[0] === 2 * PIECE_BYTES && cut.length === 0) down = true
      if (down) {
        cut.push(range)
        cutOff()
        await route.abort('connectionreset')
        return
      }
      reached.push(range)
      await route.continue()
    })

    await page.getByTestId('dataset-file').setInputFiles(dataPath)
    assert.equal(await page.getByTestId('dataset-tokenizer').inputValue(), tokenizerName)
    await page.getByTestId('dataset-file-start').click()
    // Stopped after one piece; trying again in the same page carries on from the second.
    const stopped = page.locator('[data-testid="field-error"][data-field="dataset"]')
    await stopped.waitFor()
    assert.equal(await stopped.innerText(), 'A proxy refused this piece')
    await page.locator('[data-testid="upload-resume-note"][data-kind="resume"]').waitFor()
    assert.equal(await page.getByTestId('dataset-file-start').innerText(), 'Resume upload')
    await page.getByTestId('dataset-file-start').click()
    await wasCut
    // The page is retrying in the background; reload it, as someone would whose upload hung.
    await page.reload()
    down = false
    await page.getByTestId('launch-form').waitFor()
    await page.getByTestId('dataset-file-choice').click()
    await page.getByTestId('dataset-file').setInputFiles(dataPath)

    // The form finds the unfinished dataset, takes its settings (the uploaded tokenizer too) and says how far it got.
    const note = page.getByTestId('upload-resume-note')
    await note.waitFor()
    assert.equal(await note.getAttribute('data-kind'), 'resume')
    assert.equal(Number(await note.getAttribute('data-received')), 2 * PIECE_BYTES)
    assert.match(await note.innerText(), /kept 16\.0 MiB of \d+\.\d MiB from an earlier upload of this file; uploading again sends only the rest/)
    assert.equal(await page.getByTestId('dataset-tokenizer').inputValue(), tokenizerName)
    assert.equal(await page.getByTestId('dataset-format').inputValue(), 'jsonl')
    assert.equal(await page.getByTestId('dataset-file-start').innerText(), 'Resume upload')
    await screenshot(page, 'dataset-upload-resume-desktop')
    await page.getByTestId('dataset-file-start').click()
    await page.getByTestId('dataset-ready').waitFor({ timeout: 120_000 })
    assert.match(await page.getByTestId('dataset-counts').innerText(), /^\d{1,3}(,\d{3})* documents · .* · 0 bad rows$/)
    // The same file once more (a file input fires no change for the file it holds, so clear it
    // first): the finished dataset is shown, nothing is sent.
    await page.getByTestId('dataset-file').setInputFiles([])
    await page.getByTestId('dataset-file').setInputFiles(dataPath)
    await page.locator('[data-testid="upload-resume-note"][data-kind="follow"]').waitFor()
    await page.getByTestId('dataset-ready').waitFor()
    await page.unroute(PIECE_PATH)

    assert.ok(cut.length >= 1 && cut[0]![0] === 2 * PIECE_BYTES, `the third piece was cut off: ${JSON.stringify(cut)}`)
    assert.deepEqual(statuses, [200, 400, 200, 200], 'every piece that reached the coordinator was taken (the 400 never reached it)')
    assert.equal(reached.length, 3)
    let at = 0
    for (const [start, end] of reached) {
      assert.equal(start, at, `pieces ${JSON.stringify(reached)} cover the file once, in order`)
      at = end
    }
    assert.equal(at, fileBytes, 'every byte was sent once')
  })

  test('a run on the uploaded dataset links each checkpoint\'s documents, and fits a phone; a run on the demo corpus has no such links', async () => {
    // Launch from the form with the dataset just tokenized.
    await page.locator('[data-testid="preset-card"][data-preset="tiny"]').click()
    await page.locator('#f-name').fill('Fox documents')
    await page.locator('#f-recipe-seqLen').fill('32')
    await page.locator('#f-recipe-innerSteps').fill('8')
    await page.locator('#f-recipe-batchSize').fill('4')
    await page.locator('#f-recipe-warmupSteps').fill('2')
    await page.getByText('Advanced: optimizer, codec, evaluation').click()
    await page.locator('#f-evalBatches').fill('2')
    await page.locator('#f-rounds').fill('4')
    // Keep rounds 0, 3 and the latest (4): rounds 1 and 2 are pruned and fold into one row.
    await page.locator('[name="retention.keepEvery"]').fill('3')
    await page.locator('#f-minNodes').fill('1')
    await page.locator('#f-roundDeadlineSeconds').fill('60')
    await page.getByTestId('create-and-start').click()
    await page.waitForURL((u) => /^\/runs\/[0-9a-f-]{36}$/.test(u.pathname))
    runId = new URL(page.url()).pathname.split('/').at(-1)!
    agent = await startAgent({ coordinator: coordinator!.multiaddr, token: await coordinator!.createToken('Fox Lab'), name: 'fox-reader' })
    await waitForRun(coordinator!.url, runId, (r) => r.status === 'completed', 240_000, { agent: agent.output })

    const links = (n: number): { csv: string, json: string } => ({ csv: `/api/runs/${runId}/documents.csv?round=${n}`, json: `/api/runs/${runId}/documents.json?round=${n}` })
    const listed = (await apiClient(coordinator!.url).runs.checkpoints.query({ id: runId })).checkpoints
    assert.deepEqual(listed.map((c) => [c.round, c.status, c.documents]), [[4, 'available', links(4)], [3, 'available', links(3)], [2, 'pruned', links(2)], [1, 'pruned', links(1)], [0, 'available', links(0)]])

    await page.reload()
    await page.locator('[data-testid="checkpoint-row"][data-round="4"]').waitFor()
    assert.deepEqual(await page.getByTestId('checkpoint-row').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-round'))), ['4', '3', '0'])
    // The folded pruned rounds keep their lists behind one click.
    const folded = page.locator('[data-testid="checkpoint-pruned"][data-rounds="1,2"]')
    await folded.getByTestId('pruned-documents').locator('summary').click()
    const trained = new Map<number, number>()
    for (const round of [4, 3, 2, 1, 0]) {
      const docs = page.locator(`[data-testid="checkpoint-documents"][data-round="${round}"]`)
      assert.equal(await (round === 1 || round === 2 ? folded : page.locator(`[data-testid="checkpoint-row"][data-round="${round}"]`)).locator(`[data-testid="checkpoint-documents"][data-round="${round}"]`).count(), 1, `round ${round} lists its documents in its own row`)
      assert.ok(await docs.isVisible())
      const csvHref = (await docs.getByTestId('checkpoint-documents-csv').getAttribute('href'))!
      const jsonHref = (await docs.getByTestId('checkpoint-documents-json').getAttribute('href'))!
      assert.deepEqual({ csv: csvHref, json: jsonHref }, links(round))
      const json = await getJson<Provenance>(coordinator!.url, jsonHref.slice(1))
      assert.equal(json.round, round, 'the link answers for its own checkpoint')
      const csv = await (await fetch(url(csvHref))).text()
      assert.equal(csv.trim().split('\n').length, json.documents.length + 1, 'the CSV lists the same documents')
      trained.set(round, json.documents.length)
    }
    assert.equal(trained.get(0), 0, 'the initial checkpoint trained on nothing')
    assert.ok([1, 2, 3, 4].every((n) => trained.get(n)! > trained.get(n - 1)!), `each round adds documents: ${JSON.stringify([...trained])}`)
    assert.match(await page.locator('section[aria-labelledby="recipe-title"]').innerText(), /each checkpoint above links the documents that went into it/)
    await screenshot(page, 'dataset-upload-checkpoint-documents-desktop')
    await partScreenshot(page, 'checkpoints-section', 'dataset-upload-checkpoint-documents-desktop-part')

    const phone = await browser!.newContext(PHONE)
    await watchLayoutWidth(phone)
    try {
      const mobile = await phone.newPage()
      mobile.setDefaultTimeout(WAIT_MS)
      await mobile.goto(url(`/runs/${runId}`))
      await mobile.locator('[data-testid="checkpoint-row"][data-round="4"] [data-testid="checkpoint-documents-csv"]').waitFor()
      assert.ok(await mobile.locator('[data-testid="checkpoint-row"][data-round="4"] [data-testid="checkpoint-documents-json"]').isVisible())
      await mobile.locator('[data-testid="pruned-documents"] summary').click()
      assert.ok(await mobile.locator('[data-testid="checkpoint-documents"][data-round="1"]').isVisible())
      await assertNoHorizontalScroll(mobile, 'run page with document links at 390px')
      await screenshot(mobile, 'dataset-upload-checkpoint-documents-phone')
      await partScreenshot(mobile, 'checkpoints-section', 'dataset-upload-checkpoint-documents-phone-part')
    } finally {
      await phone.close()
    }

    // A run without a document index (the demo corpus): its checkpoint has no documents link.
    const other = sessionClientWithCookie(coordinator!.url)
    await other.client.auth.signUp.mutate({ email: 'demo@runs.test', password: 'demo-password-1', displayName: 'Demo', role: 'organizer' })
    const { id: demoRun } = await other.client.runs.create.mutate({ spec: tinyRunSpec({ name: 'On the demo corpus' }) })
    await page.goto(url(`/runs/${demoRun}`))
    await page.locator('[data-testid="checkpoint-row"][data-round="0"]').waitFor()
    assert.equal(await page.getByTestId('checkpoint-documents').count(), 0)
    assert.equal((await other.client.runs.checkpoints.query({ id: demoRun })).checkpoints[0]!.documents, null)
  })

  test('a run launched while its dataset still uploads shows the dataset\'s progress on its page, then starts by itself once it is tokenized', async () => {
    const ada = sessionClientWithCookie(coordinator!.url)
    await ada.client.auth.signUp.mutate({ email: 'ada@runs.test', password: 'ada-password-1', displayName: 'Ada', role: 'organizer' })
    const rows = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ text: `Verse ${i}: and the fox went over the hill, and the dog stayed ${i % 5} days.` })).join('\n') + '\n'
    const bytes = Buffer.from(rows)
    const put = async (id: string, piece: Buffer, start: number): Promise<number> => {
      const res = await fetch(new URL(`api/datasets/${id}/file`, coordinator!.url), { method: 'PUT', headers: { cookie: ada.cookie(), 'content-type': 'application/octet-stream', 'content-range': `bytes ${start}-${start + piece.length - 1}/${bytes.length}` }, body: new Uint8Array(piece) })
      await res.arrayBuffer()
      return res.status
    }
    const dataset = await ada.client.datasets.create.mutate({ name: 'Fox verses', format: 'jsonl', field: 'text', tokenizer: 'gpt2-1k', fileName: 'verses.jsonl', fileBytes: bytes.length })
    const half = Math.floor(bytes.length / 2)
    assert.equal(await put(dataset.id, bytes.subarray(0, half), 0), 200)
    const { id } = await ada.client.runs.create.mutate({ spec: tinyRunSpec({ name: 'Waits for the fox', dataset: { source: 'dataset', id: dataset.id }, rounds: 2 }), start: true })

    await page.goto(url(`/runs/${id}`))
    const card = page.locator('[data-testid="run-awaiting"][data-dataset-status="uploading"]')
    await card.waitFor()
    assert.equal(await page.getByTestId('run-page').getAttribute('data-status'), 'draft')
    assert.match(await page.getByTestId('run-awaiting-note').innerText(), /trains on “Fox verses” \(verses\.jsonl\), which is still uploading with gpt2-1k; it starts by itself when the dataset is ready/)
    assert.equal(await page.getByTestId('awaiting-upload-meter').getByRole('progressbar').getAttribute('aria-valuenow'), '50')
    assert.equal(await page.getByTestId('run-draft').count(), 0, 'no "draft: start it" note beside it')
    await screenshot(page, 'run-awaiting-dataset-desktop')
    const phone = await browser!.newContext(PHONE)
    await watchLayoutWidth(phone)
    try {
      const mobile = await phone.newPage()
      mobile.setDefaultTimeout(WAIT_MS)
      await mobile.goto(url(`/runs/${id}`))
      await mobile.getByTestId('run-awaiting').waitFor()
      await assertNoHorizontalScroll(mobile, 'a run awaiting its dataset at 390px')
      await screenshot(mobile, 'run-awaiting-dataset-phone')
    } finally {
      await phone.close()
    }

    // The rest of the file arrives: the dataset is tokenized, the run gets its shards and starts,
    // and the page (live) drops the card.
    assert.equal(await put(dataset.id, bytes.subarray(half), half), 200)
    await page.locator('[data-testid="run-page"][data-status="running"]').waitFor({ timeout: 60_000 })
    assert.equal(await page.getByTestId('run-awaiting').count(), 0)
    const detail = await ada.client.runs.get.query({ id })
    assert.equal(detail.awaiting, null)
    assert.ok(detail.spec.trainShards.length > 0)
    await ada.client.runs.setStatus.mutate({ id, action: 'stop' })
  })
})
