// Dataset names are public (beside the runs that train on them, in shard records): plain text,
// refused at the edge with the field and the character class named, before anything is counted
// or stored. Both ways in: a file to tokenize (datasets.create) and text files (runs.uploadDataset).
// And a run spec that does not parse costs its organizer none of the hour's creations.
import { test } from 'vitest'
import assert from 'node:assert/strict'
import { TRPCError } from '@trpc/server'
import type { ApiContext } from '../context.ts'
import { apiRates } from '../../limits/api-rates.ts'
import { datasetsRouter } from './datasets.ts'
import { runsRouter } from './runs.ts'

const BAD_NAMES = [
  ['corpus\u202etxt.exe', /U\+202E \(right-to-left override, a bidirectional formatting character\)/],
  ['corpus\u001b]0;pwned\u0007', /U\+001B \(escape, a control character\)/],
  ['two\nlines', /U\+000A \(line feed, a control character\)/],
  ['iso\u2067late', /U\+2067/]
] as const

/** An organizer's context allowing one dataset upload an hour; `created` collects what reached the library. */
function organizer (): { ctx: ApiContext, created: unknown[] } {
  const created: unknown[] = []
  const ctx = {
    user: { id: 'u1', email: 'o@datasets.test', displayName: 'O', roles: ['organizer'], organizationId: null, organizationName: null },
    rates: apiRates({ datasetUploadsPerHour: 1 }),
    datasets: { create: async (input: unknown) => { created.push(input); return { id: 'd1' } } },
    limits: { datasetQuotaBytes: 2 ** 30 },
    setResponseHeader: () => {}
  } as unknown as ApiContext
  return { ctx, created }
}

async function refusal (call: Promise<unknown>): Promise<TRPCError> {
  const err = await call.then(() => undefined, (e: unknown) => e)
  assert.ok(err instanceof TRPCError, String(err))
  return err
}

test('a dataset name to tokenize is plain text: a bad one is refused naming the field and the character, reaching nothing and counting nothing', async () => {
  const { ctx, created } = organizer()
  const caller = datasetsRouter.createCaller(ctx)
  const file = { format: 'text', tokenizer: 'byte', fileName: 'a.txt', fileBytes: 10 } as const
  for (const [name, what] of BAD_NAMES) {
    const err = await refusal(caller.create({ name, ...file }))
    assert.equal(err.code, 'BAD_REQUEST', JSON.stringify(name))
    assert.match(err.message, /dataset name must be plain text: /)
    assert.match(err.message, what)
  }
  assert.deepEqual(created, [])
  // The hour's one upload is still there.
  await caller.create({ name: 'Лаборатория corpus 🚀', ...file })
  assert.deepEqual(created.map((c) => (c as { name: string }).name), ['Лаборатория corpus 🚀'])
})

test('a dataset that shows no name, or whose file name or field is not plain text, is refused naming what is wrong', async () => {
  const { ctx, created } = organizer()
  const caller = datasetsRouter.createCaller(ctx)
  const file = { format: 'jsonl', tokenizer: 'byte', fileName: 'a.jsonl', fileBytes: 10 } as const
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ name: '\u200b\u2060' }, /dataset name shows nothing: it holds only spaces and invisible characters; name the dataset/],
    [{ name: 'ok', fileName: 'invoice\u202egnp.jsonl' }, /U\+202E/],
    [{ name: 'ok', field: 'te\u001bxt' }, /U\+001B/],
    [{ name: 'ok', fileName: '   ' }, /at least 1|>=1|too small/i]
  ]
  for (const [input, what] of cases) {
    const err = await refusal(caller.create({ ...file, ...input } as Parameters<typeof caller.create>[0]))
    assert.equal(err.code, 'BAD_REQUEST', JSON.stringify(input))
    assert.match(err.message, what)
  }
  assert.deepEqual(created, [], 'nothing reached the datasets service')
})

test('a dataset name for uploaded text files is plain text too', async () => {
  const { ctx } = organizer()
  const caller = runsRouter.createCaller(ctx)
  const files = [{ name: 'a.txt', text: 'some text' }]
  for (const [name, what] of BAD_NAMES) {
    const err = await refusal(caller.uploadDataset({ name, files }))
    assert.equal(err.code, 'BAD_REQUEST', JSON.stringify(name))
    assert.match(err.message, /dataset name must be plain text: /)
    assert.match(err.message, what)
  }
  // A plain name passes the edge (and the hour's one upload is still there): this upload is then refused for its size.
  const err = await refusal(caller.uploadDataset({ name: 'tidy corpus', files }))
  assert.match(err.message, /under 4 KiB of text/)
})

test('a run spec that does not parse is refused before the hour\'s run creations are counted', async () => {
  const ctx = { ...organizer().ctx, rates: apiRates({ runCreationsPerHour: 1 }) } as unknown as ApiContext
  const caller = runsRouter.createCaller(ctx)
  for (const spec of [{ name: 'swap\u202eit', rounds: 3 }, { name: 'ok', rounds: -1 }, 'not a spec']) {
    const err = await refusal(caller.create({ spec }))
    assert.equal(err.code, 'BAD_REQUEST', JSON.stringify(spec))
    assert.match(err.message, /invalid run spec/)
  }
  assert.equal(ctx.rates.runCreations.retryAfter('u1'), 0, 'the one creation an hour is still there')
})
