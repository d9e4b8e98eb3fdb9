// pnpm start and pnpm test rebuild web/dist when it is older than what it is built from: a build
// left from before a pull would serve, and verify ledgers with, the old code.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { dashboardBuildReason } from '../scripts/dashboard-build.ts'

function file (root: string, path: string, at: number): void {
  mkdirSync(join(root, path, '..'), { recursive: true })
  writeFileSync(join(root, path), 'x')
  utimesSync(join(root, path), at / 1000, at / 1000)
}

test('web/dist is built again when missing or older than a dashboard or protocol source, and not when current', () => {
  const root = mkdtempSync(join(tmpdir(), 'barnraise-dashboard-build-'))
  const t0 = Date.UTC(2026, 0, 1)
  file(root, 'web/src/main.tsx', t0)
  file(root, 'protocol/src/ledger-chain.ts', t0)
  // Folders' own times count too (a deleted file changes its folder's): set them old.
  for (const dir of ['web/src', 'protocol/src', 'web', 'protocol']) utimesSync(join(root, dir), t0 / 1000, t0 / 1000)
  assert.equal(dashboardBuildReason(root), 'web/dist is missing')
  file(root, 'web/dist/index.html', t0 + 60_000)
  assert.equal(dashboardBuildReason(root), undefined)
  file(root, 'protocol/src/ledger-chain.ts', t0 + 120_000)
  assert.equal(dashboardBuildReason(root), 'protocol/src changed since web/dist was built')
  file(root, 'web/dist/index.html', t0 + 180_000)
  file(root, 'web/src/pages/LedgerPage.tsx', t0 + 240_000)
  assert.equal(dashboardBuildReason(root), 'web/src changed since web/dist was built')
  // A build after every source (the new folder web/src/pages is dated now), then a package installed later.
  const later = Date.now() + 3600_000
  file(root, 'web/dist/index.html', later)
  file(root, 'web/node_modules/some-package/index.js', later + 60_000)
  file(root, 'protocol/src/ledger-chain.test.ts', later + 60_000)
  utimesSync(join(root, 'protocol/src'), later / 1000, later / 1000)
  assert.equal(dashboardBuildReason(root), undefined, 'installed packages and tests are not sources')
})
