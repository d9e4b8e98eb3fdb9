/*
 * The account page in a real browser: a person reaches it from the account menu, changes their
 * password (wrong current password first), which signs out their other sessions, then signs
 * out everywhere. Needs the built dashboard and Chromium (see test/support/browser.ts).
 */
import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { startCoordinator } from './support/cluster.ts'
import type { RunningCoordinator } from './support/cluster.ts'
import { DESKTOP_CONTEXT, PHONE_CONTEXT, launchChromium, screenshot, assertNoHorizontalScroll } from './support/browser.ts'
import { sessionClient } from './support/session-client.ts'

const WAIT_MS = 20_000

describe('a person\'s own account page', { timeout: 300_000 }, () => {
  let coordinator: RunningCoordinator | undefined
  let browser: Browser | undefined
  beforeAll(async () => {
    browser = await launchChromium(WAIT_MS)
    coordinator = await startCoordinator()
    await sessionClient(coordinator.url).auth.signUp.mutate({ email: 'fay@funds.test', password: 'first-password-1', displayName: 'Fay Funder', role: 'funder', setupCode: coordinator.setupCode! })
  })
  afterAll(async () => {
    await browser?.close()
    await coordinator?.stop()
  })

  test('change the password from the page (the other session ends), then sign out everywhere', async () => {
    const url = (path: string): string => new URL(path, coordinator!.url).toString()
    /** A page of `context` signed in as Fay through the sign-in form. */
    const signedIn = async (context: BrowserContext, password: string): Promise<Page> => {
      const page = await context.newPage()
      page.setDefaultTimeout(WAIT_MS)
      await page.goto(url('signin'))
      await page.locator('#signin-email').fill('fay@funds.test')
      await page.locator('#signin-password').fill(password)
      await page.getByTestId('signin-submit').click()
      await page.getByTestId('account-name').waitFor({ state: 'attached' })
      return page
    }
    const elsewhere = sessionClient(coordinator!.url)
    await elsewhere.auth.signIn.mutate({ email: 'fay@funds.test', password: 'first-password-1' })

    const context = await browser!.newContext(DESKTOP_CONTEXT)
    const page = await signedIn(context, 'first-password-1')
    await page.getByTestId('account-name').click()
    await page.getByTestId('to-account').click()
    await page.waitForURL(/\/account$/)
    assert.match(await page.getByTestId('account-details').innerText(), /^fay@funds\.test · Admin/)

    // Checked in the page first, then by the coordinator.
    await page.locator('#account-password').fill('a-wrong-guess')
    await page.locator('#account-new-password').fill('short')
    await page.locator('#account-confirm').fill('shorter')
    await page.getByTestId('password-submit').click()
    assert.match(await page.locator('#account-new-password-error').innerText(), /at least 10 characters/)
    assert.match(await page.locator('#account-confirm-error').innerText(), /same way twice/)
    await page.locator('#account-new-password').fill('second-password-2')
    await page.locator('#account-confirm').fill('second-password-2')
    await page.getByTestId('password-submit').click()
    assert.match(await page.getByTestId('password-outcome').innerText(), /current password is not right/)
    assert.notEqual(await elsewhere.auth.me.query(), null, 'a refused change ends nothing')

    await page.locator('#account-password').fill('first-password-1')
    await page.getByTestId('password-submit').click()
    assert.match(await page.getByTestId('password-outcome').innerText(), /Password changed/)
    assert.equal(await elsewhere.auth.me.query(), null, 'the other session ended')
    await page.reload()
    await page.getByTestId('account-details').waitFor()
    await screenshot(page, 'account-desktop')

    await elsewhere.auth.signIn.mutate({ email: 'fay@funds.test', password: 'second-password-2' })
    await page.getByTestId('sign-out-everywhere').click()
    await page.getByTestId('sign-out-everywhere-confirm').click()
    await page.waitForURL(/\/signin$/)
    assert.equal(await elsewhere.auth.me.query(), null, 'every session ended')
    await page.goto(url('account'))
    await page.getByTestId('auth-required').waitFor()
    await context.close()

    const phone = await browser!.newContext(PHONE_CONTEXT)
    const small = await signedIn(phone, 'second-password-2')
    await small.goto(url('account'))
    await small.getByTestId('account-details').waitFor()
    await assertNoHorizontalScroll(small, 'the account page on a phone')
    await screenshot(small, 'account-phone')
    await phone.close()
  })
})
