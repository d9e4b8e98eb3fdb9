import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ParamSet } from '../model/params.ts'
import { checkpointFiles } from './checkpoint-files.ts'
import type { ExportOptions } from './checkpoint-files.ts'

/** Writes `params` as a Hugging Face folder (config.json, model.safetensors, tokenizer files) into `dir`, creating it. */
export async function exportHuggingFace (dir: string, params: ParamSet, opts: ExportOptions): Promise<void> {
  await mkdir(dir, { recursive: true })
  for (const [name, contents] of checkpointFiles(params, opts)) await writeFile(join(dir, name), contents)
}
