// The TypeScript module build-wasm.ts writes for a compiled .wat file.

/** The generated module: the compiled bytes as base64. */
export function wasmModuleSource (watName: string, bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes).toString('base64')
  const lines = b64.match(/.{1,100}/g) ?? []
  return `// Generated from ${watName} by protocol/scripts/build-wasm.ts; do not edit.\nexport const WASM_BASE64 =\n${lines.map((l) => `  '${l}'`).join(' +\n')}\n`
}
