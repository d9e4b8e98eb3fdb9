// The dashboard is served from web/dist, a build output git ignores: after a pull, a build from
// older sources would serve (and verify ledgers with) older code. `pnpm start` and `pnpm test`
// build it when it is missing or older than what it is built from.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'

/** What the dashboard's build reads from this repository: its own sources and the protocol subpaths it bundles. */
const SOURCES = ['web/src', 'web/public', 'web/index.html', 'web/vite.config.ts', 'web/package.json', 'protocol/src', 'protocol/package.json']

/** The newest modification time (ms) under `path`, a file or a folder; 0 when it is absent. */
function newestUnder (path: string): number {
  if (!existsSync(path)) return 0
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  let newest = stat.mtimeMs
  for (const entry of readdirSync(path)) {
    // Tests are not bundled: changing one needs no build.
    if (entry === 'node_modules' || /\.test\.tsx?$/.test(entry)) continue
    newest = Math.max(newest, newestUnder(join(path, entry)))
  }
  return newest
}

/** Why web/dist must be built again (missing, or older than a source), or undefined when it is current. */
export function dashboardBuildReason (root: string): string | undefined {
  const built = join(root, 'web', 'dist', 'index.html')
  if (!existsSync(built)) return 'web/dist is missing'
  const builtAt = statSync(built).mtimeMs
  const stale = SOURCES.find((source) => newestUnder(join(root, source)) > builtAt)
  return stale === undefined ? undefined : `${stale} changed since web/dist was built`
}

/** Builds the dashboard when `dashboardBuildReason` says so, printing why through `say`; exits the process on a failed build. */
export function ensureDashboardBuilt (root: string, say: (line: string) => void, who: string): void {
  const reason = dashboardBuildReason(root)
  if (reason === undefined) return
  say(`${who}: building the dashboard (${reason})`)
  const build = spawnSync('pnpm', ['--filter', '@barnraise/web', 'build'], { cwd: root, stdio: 'inherit' })
  if (build.status !== 0) process.exit(build.status ?? 1)
}
