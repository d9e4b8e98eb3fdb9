// WebAssembly text to binary with wabt (SIMD enabled), for build-wasm.ts and its test.
import wabtModule from 'wabt'

/** The binary module `source` (WebAssembly text) compiles to. */
export async function compileWat (name: string, source: string): Promise<Uint8Array> {
  const wabt = await wabtModule()
  const parsed = wabt.parseWat(name, source, { simd: true })
  try {
    parsed.resolveNames()
    parsed.validate()
    return new Uint8Array(parsed.toBinary({ log: false }).buffer)
  } finally {
    parsed.destroy()
  }
}
