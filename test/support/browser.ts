import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
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
 * Fails when the page is wider than the viewport it was given. Measured against the
 * configured width: a mobile viewport widens itself (and `innerWidth`) to fit overflowing
 * content, so comparing with `innerWidth` would pass exactly the pages that overflow.
 */
export async function assertNoHorizontalScroll (page: Page, where: string): Promise<void> {
  const width = page.viewportSize()?.width ?? await page.evaluate(() => window.innerWidth)
  const scrollWidth = await page.evaluate(() => document.scrollingElement!.scrollWidth)
  assert.ok(scrollWidth <= width, `${where}: page is ${scrollWidth}px wide in a ${width}px viewport`)
}
