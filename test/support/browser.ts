import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import assert from 'node:assert/strict'
import { REPO_ROOT } from './processes.ts'

/** Debian's Chromium (the project never downloads a browser of its own). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
/** Where browser tests save what each page looked like. */
export const SCREENSHOTS = join(REPO_ROOT, 'test-artifacts', 'screenshots')
const WEB_DIST = join(REPO_ROOT, 'web', 'dist', 'index.html')

/**
 * Checks what a browser test needs (the built dashboard, Chromium), readies the screenshot
 * folder, and launches headless Chromium with the flags this sandboxed, offline machine needs.
 */
export async function launchChromium (timeoutMs: number): Promise<Browser> {
  if (!existsSync(WEB_DIST)) throw new Error(`the dashboard is not built (${WEB_DIST} is missing); run: pnpm --filter @barnraise/web build`)
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}; install it (apt-get install -y chromium) or set CHROMIUM_PATH`)
  await mkdir(SCREENSHOTS, { recursive: true })
  return await chromium.launch({
    executablePath: CHROMIUM,
    timeout: timeoutMs,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic',
      '--no-first-run', '--disable-component-update', '--disable-sync']
  })
}

/** Desktop and phone contexts every browser test uses. */
export const DESKTOP_CONTEXT = { viewport: { width: 1280, height: 800 }, colorScheme: 'light', reducedMotion: 'reduce' } as const
export const PHONE_CONTEXT = { viewport: { width: 375, height: 812 }, colorScheme: 'light', reducedMotion: 'reduce', isMobile: true, hasTouch: true } as const

/** A full-page screenshot named `name`, taken from the top so the sticky header sits where it belongs. */
export async function screenshot (page: Page, name: string): Promise<void> {
  await page.evaluate(() => { window.scrollTo(0, 0) })
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true })
}

/**
 * Records, in every page of `context`, the widest the document has been after any change to
 * its DOM (read when the change's task ends, so before the browser paints it). A layout that
 * is too wide only between a render and its effects is caught every time, not by the luck of
 * when a test looks.
 */
export async function watchLayoutWidth (context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const w = window as unknown as { __widestLayout?: number }
    w.__widestLayout = 0
    new MutationObserver(() => {
      const root = document.scrollingElement
      if (root !== null) w.__widestLayout = Math.max(w.__widestLayout ?? 0, root.scrollWidth)
    }).observe(document, { childList: true, subtree: true, attributes: true })
  })
}

/**
 * Fails when the page is wider than the viewport it was given, now or (in a context given to
 * `watchLayoutWidth`) at any moment since it loaded. Measured against the configured width: a
 * mobile viewport widens itself (and `innerWidth`) to fit overflowing content, so comparing
 * with `innerWidth` would pass exactly the pages that overflow.
 */
export async function assertNoHorizontalScroll (page: Page, where: string): Promise<void> {
  const width = page.viewportSize()?.width ?? await page.evaluate(() => window.innerWidth)
  const { now, widest } = await page.evaluate(() => ({
    now: document.scrollingElement!.scrollWidth,
    widest: (window as unknown as { __widestLayout?: number }).__widestLayout ?? 0
  }))
  assert.ok(now <= width, `${where}: page is ${now}px wide in a ${width}px viewport`)
  assert.ok(widest <= width, `${where}: page was ${widest}px wide in a ${width}px viewport while it loaded`)
}
