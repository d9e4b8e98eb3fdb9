// `pnpm bench`: runs every benchmark under bench/ in turn (each prints its own ratios against
// a baseline measured in the same run). `pnpm bench federated` runs the ones whose name matches.
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const filter = process.argv[2]
const files = readdirSync(`${root}/bench`).filter((f) => f.endsWith('.bench.ts') && (filter === undefined || f.includes(filter))).sort()
if (files.length === 0) {
  process.stderr.write(`no benchmark matches "${filter}"\n`)
  process.exit(2)
}
for (const file of files) {
  process.stdout.write(`\n== bench/${file}\n`)
  const result = spawnSync(process.execPath, ['--disable-warning=ExperimentalWarning', `bench/${file}`], { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}
