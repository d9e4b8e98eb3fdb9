import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { importHuggingFace, presetConfig } from '@barnraise/trainer'
import { runTrainCommand } from './train.ts'

async function run (argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  const err = new PassThrough()
  err.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await runTrainCommand(argv, {
    stdout: { write: (s: string) => { stdout += s } },
    stderr: err as unknown as NodeJS.WriteStream
  })
  err.end()
  return { code, stdout, stderr }
}

test('trains a few steps on the demo corpus, reports losses and saves a loadable checkpoint', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'train-'))
  try {
    const out = join(dir, 'ckpt')
    const { code, stdout, stderr } = await run(['--preset', 'tiny', '--steps', '6', '--batch', '2', '--seq', '32', '--eval-batches', '1', '--lr', '1e-2', '--out', out])
    assert.equal(code, 0, stderr)
    const baseline = Number(/unigram-entropy baseline: ([\d.]+)/.exec(stdout)?.[1])
    const before = Number(/validation loss before: ([\d.]+)/.exec(stdout)?.[1])
    const after = Number(/validation loss after: ([\d.]+)/.exec(stdout)?.[1])
    assert.ok(baseline > 2 && baseline < 5, stdout)
    assert.ok(Math.abs(before - Math.log(256)) < 0.1, `an untrained byte model starts near ln 256: ${before}`)
    assert.ok(after < before, `${before} → ${after}`)
    assert.match(stderr, /step 6\/6 loss \d/)
    assert.match(stdout, /checkpoint: /)
    const loaded = await importHuggingFace(out)
    assert.deepEqual(loaded.config, presetConfig('tiny'))
    assert.ok(JSON.parse(await readFile(join(out, 'config.json'), 'utf8')).architectures.includes('LlamaForCausalLM'))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})

test('bad options exit 2 with the usage', async () => {
  for (const argv of [['--steps', '0'], ['--steps', 'many'], ['--preset', 'enormous'], ['--lr', '-1'], ['--seq', '100000'], ['extra']]) {
    const { code, stderr } = await run(argv)
    assert.equal(code, 2, argv.join(' '))
    assert.match(stderr, /usage: barnraise-agent train/)
  }
})
