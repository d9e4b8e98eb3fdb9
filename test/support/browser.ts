import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import type { Browser } from 'playwright-core'
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
