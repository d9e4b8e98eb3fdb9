import { chromium } from 'playwright-core'
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] })
try {
  for (const [name, vp] of [['desk', { width: 1280, height: 800 }], ['phone', { width: 375, height: 812 }]] as const) {
    const ctx = await browser.newContext({ viewport: vp })
    const page = await ctx.newPage()
    for (const p of ['/nodes', '/ledger']) {
      await page.goto('http://127.0.0.1:4599' + p)
      await page.waitForTimeout(4000)
      await page.screenshot({ path: `/tmp/shots/${name}${p.replace('/', '-')}.png`, fullPage: true })
    }
    await ctx.close()
  }
} finally { await browser.close() }
