// Compiles protocol/src/codecs/wasm/*.wat with wabt (a dev dependency) into the .wasm.ts
// modules the codecs load (the bytes as base64), so nothing at run time needs a compiler.
//   bin/node protocol/scripts/build-wasm.ts [--check]
// --check exits 1 when a committed .wasm.ts differs from what its .wat compiles to.
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { compileWat } from './compile-wat.ts'
import { wasmModuleSource } from './wasm-module-source.ts'

const dir = fileURLToPath(new URL('../src/codecs/wasm/', import.meta.url))
const check = process.argv.includes('--check')
let stale = 0
for (const name of (await readdir(dir)).filter((f) => f.endsWith('.wat'))) {
  const target = `${dir}${name.replace(/\.wat$/, '.wasm.ts')}`
  const text = wasmModuleSource(name, await compileWat(name, await readFile(`${dir}${name}`, 'utf8')))
  const current = await readFile(target, 'utf8').catch(() => '')
  if (current === text) continue
  stale++
  if (check) process.stderr.write(`${target} is stale: run bin/node protocol/scripts/build-wasm.ts\n`)
  else await writeFile(target, text)
}
if (check && stale > 0) process.exit(1)
