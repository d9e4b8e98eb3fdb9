/*
 * Checkpoints like a model page, against a real coordinator (Postgres), two real agents from two
 * labs, and a coordinator killed mid-run: the stable "latest" address follows new checkpoints,
 * retention deletes exactly the blobs it should and resume still works, the folder downloads as
 * one tar the system `tar` unpacks into files identical to the single downloads that load back
 * through the trainer's Hugging Face import, the model card agrees with the ledger, and bad ids
 * get clear 4xx answers.
 */
import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { readFile, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { demoCorpusShards, importHuggingFace, validationLoss } from '@barnraise/trainer'
import { startAgent, startCoordinator, tempDir } from './support/cluster.ts'
import type { RunningAgent, RunningCoordinator } from './support/cluster.ts'
import { createRunViaCli, getJson, tinyRunSpec, waitForRun } from './support/runs.ts'
import { createTestDatabase } from './support/postgres.ts'

interface Listed {
  round: number
  tokensSeen: number
  valLoss: number | null
  sha256: string
  status: 'available' | 'pruned' | 'missing'
  latest: boolean
  folderName: string
  files: Array<{ name: string, size: number, url: string }>
  tar: { name: string, size: number, url: string } | null
}

const FILES = ['README.md', 'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

async function get (base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number, headers: Headers, bytes: Uint8Array }> {
  const res = await fetch(new URL(path, base), { headers })
  return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) }
}

async function errorOf (base: string, path: string): Promise<{ status: number, code: string, error: string }> {
  const res = await get(base, path)
  const body = JSON.parse(new TextDecoder().decode(res.bytes)) as { code: string, error: string }
  return { status: res.status, ...body }
}

/** Every file under the blob store, by name (its sha256). */
async function storedBlobs (dataDir: string): Promise<Set<string>> {
  const root = join(dataDir, 'blobs')
  const names = new Set<string>()
  for (const dir of await readdir(root)) for (const f of await readdir(join(root, dir))) names.add(f)
  return names
}

describe('checkpoints as a model page', () => {
  test('latest follows, retention prunes exactly and survives a restart, the tar unpacks to loadable files, the card matches the ledger', { timeout: 300_000 }, async () => {
    const database = await createTestDatabase()
    const env = { DATABASE_URL: database.url }
    let coordinator: RunningCoordinator | undefined = await startCoordinator({ env })
    const dataDir = coordinator.dataDir
    const agents: RunningAgent[] = []
    const client = new pg.Client({ connectionString: database.url })
    await client.connect()
    try {
      agents.push(await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Checkpoint Lab'), name: 'ckpt-a' }))
      agents.push(await startAgent({ coordinator: coordinator.multiaddr, token: await coordinator.createToken('Other Lab'), name: 'ckpt-b' }))
      const spec = tinyRunSpec({
        name: 'Ckpt Test: "β" run',
        rounds: 8,
        minNodes: 2,
        roundDeadlineSeconds: 30,
        license: 'mit',
        retention: { keepEvery: 3 },
        recipe: { innerSteps: 4, batchSize: 2, seqLen: 16, innerLr: 0.003, warmupSteps: 1 }
      })
      const runId = await createRunViaCli(dataDir, spec, env)
      const base = coordinator.url

      // The stable address serves whatever is newest and says which checkpoint that is.
      const first = await waitForRun(base, runId, (r) => r.round >= 1)
      const before = await get(base, `api/runs/${runId}/checkpoints/latest/model.safetensors`)
      assert.equal(before.status, 200)
      const beforeSha = before.headers.get('x-checkpoint-sha256')!
      assert.equal(sha256(before.bytes), beforeSha, 'the header names the bytes served')
      assert.ok(Number(before.headers.get('x-checkpoint-round')) >= first.round)
      assert.equal(before.headers.get('content-location'), `/api/checkpoints/${beforeSha}/model.safetensors`)
      assert.match(before.headers.get('cache-control')!, /^public, max-age=\d{1,2}$/)
      await waitForRun(base, runId, (r) => r.round > Number(before.headers.get('x-checkpoint-round')))
      const after = await get(base, `api/runs/${runId}/checkpoints/latest/model.safetensors`)
      const afterSha = after.headers.get('x-checkpoint-sha256')!
      assert.notEqual(afterSha, beforeSha, 'latest moved on to the new checkpoint')
      assert.equal(sha256(after.bytes), afterSha)
      assert.ok(Number(after.headers.get('x-checkpoint-round')) > Number(before.headers.get('x-checkpoint-round')))

      // Kill the coordinator mid-run; a restart on the same ports resumes and finishes.
      await waitForRun(base, runId, (r) => r.round >= 4)
      coordinator.process.child.kill('SIGKILL')
      await coordinator.process.exited
      const port = new URL(base).port
      const p2pPort = coordinator.multiaddr.split('/')[4]!
      coordinator = await startCoordinator({ env, dataDir, args: ['--http-port', port, '--p2p-port', p2pPort] })
      const done = await waitForRun(base, runId, (r) => r.status === 'completed', 240_000)
      assert.equal(done.round, 8)

      // Retention: round 0, every 3rd round and the latest keep their weights; the rest are gone.
      // Pruning follows each close's commit, so the last close's prune may land a moment after
      // the run reads as completed.
      let listed = await getJson<Listed[]>(base, `api/runs/${runId}/checkpoints`)
      for (let i = 0; i < 50 && listed.find((c) => c.round === 7)?.status !== 'pruned'; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        listed = await getJson<Listed[]>(base, `api/runs/${runId}/checkpoints`)
      }
      assert.deepEqual(listed.map((c) => c.round), [0, 1, 2, 3, 4, 5, 6, 7, 8])
      const kept = listed.filter((c) => c.status === 'available')
      const pruned = listed.filter((c) => c.status === 'pruned')
      assert.deepEqual(kept.map((c) => c.round), [0, 3, 6, 8])
      assert.deepEqual(pruned.map((c) => c.round), [1, 2, 4, 5, 7])
      assert.deepEqual(listed.filter((c) => c.latest).map((c) => c.round), [8])
      for (const c of pruned) assert.deepEqual([c.files, c.tar], [[], null])
      const run = (await client.query<{ latest_checkpoint: string, outer_state: string }>('select latest_checkpoint, outer_state from runs where id = $1', [runId])).rows[0]!
      assert.equal(run.latest_checkpoint, kept.at(-1)!.sha256)
      const onDisk = await storedBlobs(dataDir)
      for (const c of kept) assert.ok(onDisk.has(c.sha256), `kept round ${c.round} is on disk`)
      for (const c of pruned) assert.ok(!onDisk.has(c.sha256), `pruned round ${c.round} was deleted`)
      const recorded = (await client.query<{ sha256: string, kind: string }>('select sha256, kind from blobs')).rows
      for (const b of recorded) assert.ok(onDisk.has(b.sha256), `recorded ${b.kind} blob ${b.sha256} is on disk`)
      assert.deepEqual(recorded.filter((b) => b.kind === 'optimizer').map((b) => b.sha256), [run.outer_state], 'only the current outer momentum is kept')
      assert.deepEqual(recorded.filter((b) => b.kind === 'checkpoint').map((b) => b.sha256).sort(), kept.map((c) => c.sha256).sort())
      assert.equal(recorded.filter((b) => b.kind === 'report').length, 0)
      // Nothing model-sized is left behind unrecorded either (a close cut short by the kill writes its blobs first).
      const sizeOf = async (sha: string): Promise<number> => (await readFile(join(dataDir, 'blobs', sha.slice(0, 2), sha))).byteLength
      const checkpointBytes = await sizeOf(kept.at(-1)!.sha256)
      const optimizerBytes = await sizeOf(run.outer_state)
      const sizes = await Promise.all([...onDisk].map(sizeOf))
      assert.equal(sizes.filter((n) => n === checkpointBytes).length, kept.length, 'model-sized files on disk = kept checkpoints')
      assert.equal(sizes.filter((n) => n === optimizerBytes).length, 1, 'momentum-sized files on disk = the current one')
      const marked = (await client.query<{ round: number }>('select round from checkpoints where run_id = $1 and pruned_at is not null order by round', [runId])).rows
      assert.deepEqual(marked.map((r) => r.round), [1, 2, 4, 5, 7], 'pruned rows stay, marked')

      // A pruned checkpoint's downloads answer 410 and say why, and where the kept ones are.
      const prunedSha = pruned[0]!.sha256
      for (const file of ['model.safetensors', 'README.md', 'folder.tar']) {
        const goneErr = await errorOf(base, `api/checkpoints/${prunedSha}/${file}`)
        assert.equal(goneErr.status, 410, file)
        assert.equal(goneErr.code, 'ERR_CHECKPOINT_PRUNED')
        assert.match(goneErr.error, /^the checkpoint of round 1 of run "Ckpt Test: "β" run" was pruned/)
        assert.match(goneErr.error, /every 3rd round and the latest \(retention\.keepEvery = 3\)/)
        assert.match(goneErr.error, new RegExp(`Nearest kept: round 0 \\(/api/checkpoints/${kept[0]!.sha256}/\\) and round 3`))
      }
      assert.equal((await getJson<Listed>(base, `api/checkpoints/${prunedSha}`)).status, 'pruned')

      // The whole folder as one tar, from the stable address.
      const latest = kept.at(-1)!
      const tarRes = await get(base, `api/runs/${runId}/checkpoints/latest/folder.tar`)
      assert.equal(tarRes.status, 200)
      assert.equal(tarRes.headers.get('content-type'), 'application/x-tar')
      assert.equal(tarRes.headers.get('content-disposition'), 'attachment; filename="ckpt-test-run-round-8.tar"')
      assert.equal(Number(tarRes.headers.get('content-length')), latest.tar!.size)
      assert.equal(tarRes.bytes.byteLength, latest.tar!.size)
      assert.equal(tarRes.headers.get('x-checkpoint-sha256'), latest.sha256)
      const cached = await get(base, `api/runs/${runId}/checkpoints/latest/folder.tar`, { 'if-none-match': tarRes.headers.get('etag')! })
      assert.equal(cached.status, 304)
      const dir = await tempDir('ckpt-tar')
      await writeFile(join(dir, latest.tar!.name), tarRes.bytes)
      const untar = spawnSync('tar', ['-xf', latest.tar!.name], { cwd: dir, encoding: 'utf8' })
      assert.equal(untar.status, 0, untar.stderr)
      const folder = join(dir, 'ckpt-test-run-round-8')
      assert.deepEqual((await readdir(folder)).sort(), [...FILES].sort())
      assert.deepEqual(latest.files.map((f) => f.name), FILES)
      for (const f of latest.files) {
        const single = await get(base, f.url)
        assert.equal(single.status, 200, f.url)
        assert.equal(single.bytes.byteLength, f.size, `${f.name}: listed size`)
        assert.deepEqual(new Uint8Array(await readFile(join(folder, f.name))), single.bytes, `${f.name}: tar member = single download`)
      }
      assert.equal(sha256(await readFile(join(folder, 'model.safetensors'))), latest.sha256)
      const params = await importHuggingFace(folder)
      const { validation } = await demoCorpusShards()
      const loss = validationLoss(params, validation.tokens, { batches: 2, batchSize: 2, seqLen: 16 })
      assert.ok(Math.abs(loss - latest.valLoss!) < 1e-4, `the unpacked folder reproduces the reported loss: ${loss} vs ${latest.valLoss}`)

      // The model card: the run's facts and the ledger's shares up to that round.
      const ledger = await getJson<Array<{ outcome: string, round: number, tokens: number, peerId: string }>>(base, `api/runs/${runId}/ledger.json`)
      for (const c of [kept[1]!, latest]) {
        const card = new TextDecoder().decode((await get(base, `api/checkpoints/${c.sha256}/README.md`)).bytes)
        const accepted = ledger.filter((e) => e.outcome === 'accepted' && e.round <= c.round)
        const total = accepted.reduce((n, e) => n + e.tokens, 0)
        assert.equal(total, c.tokensSeen, 'tokens seen = accepted ledger tokens up to the round')
        assert.match(card, /^---\nlicense: mit\nlibrary_name: transformers\npipeline_tag: text-generation\n/)
        assert.match(card, new RegExp(`\\n            value: ${Number(c.valLoss!.toFixed(6))}\\n---\\n`))
        assert.match(card, new RegExp(`^# Ckpt Test: "β" run: round ${c.round}$`, 'm'))
        assert.match(card, new RegExp(`checkpoint after round ${c.round} of 8, having seen ${c.tokensSeen.toLocaleString('en-US')} training tokens`))
        assert.match(card, /\| Architecture \| `LlamaForCausalLM` \(the `tiny` preset\): 2 layers, hidden size 64/)
        assert.match(card, /King James Bible/)
        assert.match(card, /`mit`, as the run's organizer set it/)
        assert.match(card, new RegExp(`from_pretrained\\("\\./ckpt-test-run-round-${c.round}"\\)`))
        for (const [lab, node] of [['Checkpoint Lab', 'ckpt-a'], ['Other Lab', 'ckpt-b']] as const) {
          const agent = agents[node === 'ckpt-a' ? 0 : 1]!
          const mine = accepted.filter((e) => e.peerId === agent.peerId).reduce((n, e) => n + e.tokens, 0)
          const share = `${(100 * mine / total).toFixed(1)}%`
          assert.match(card, new RegExp(`^\\| ${lab} \\| 1 \\| ${mine.toLocaleString('en-US')} \\| ${share.replace('.', '\\.')} \\|`, 'm'), `${lab} row in round ${c.round}'s card`)
          assert.match(card, new RegExp(`^\\| ${node} \\| ${lab} \\| ${mine.toLocaleString('en-US')} \\| ${share.replace('.', '\\.')} \\|$`, 'm'))
        }
      }
      const initialCard = new TextDecoder().decode((await get(base, `api/checkpoints/${kept[0]!.sha256}/README.md`)).bytes)
      assert.match(initialCard, /No contributions yet: this checkpoint holds the initial, untrained weights\./)

      // The listing a page at a time, each answer naming the next page; together, the whole list.
      const whole = JSON.parse(new TextDecoder().decode((await get(base, `api/runs/${runId}/checkpoints`)).bytes)) as Array<{ round: number }>
      assert.ok(whole.length >= 4)
      const paged: Array<{ round: number }> = []
      let next: string | null = `api/runs/${runId}/checkpoints?limit=3`
      while (next !== null) {
        const page = await get(base, next)
        assert.equal(page.status, 200)
        paged.push(...JSON.parse(new TextDecoder().decode(page.bytes)) as Array<{ round: number }>)
        next = /^<\/(\S+)>; rel="next"$/.exec(page.headers.get('link') ?? '')?.[1] ?? null
        assert.ok(paged.length <= whole.length, 'the pages end')
      }
      assert.deepEqual(paged.map((c) => c.round), whole.map((c) => c.round))

      // Bad addresses get a 4xx with a code and a sentence that says what to do; nothing crashes.
      const zeros = '0'.repeat(64)
      const bad: Array<[string, number, string, RegExp]> = [
        ['api/runs/not-a-run/checkpoints', 400, 'ERR_BAD_RUN_ID', /is not a run id: a run id is a UUID/],
        ['api/runs/not-a-run/checkpoints/latest/README.md', 400, 'ERR_BAD_RUN_ID', /list runs at \/api\/runs/],
        ['api/runs/00000000-0000-4000-8000-000000000000/checkpoints', 404, 'ERR_RUN_NOT_FOUND', /no run 00000000-0000-4000-8000-000000000000/],
        ['api/runs/00000000-0000-4000-8000-000000000000/checkpoints/latest/config.json', 404, 'ERR_RUN_NOT_FOUND', /list runs at \/api\/runs/],
        [`api/runs/${runId}/checkpoints/third/README.md`, 404, 'ERR_NOT_FOUND', /checkpoints\/latest\/<file>/],
        [`api/runs/${runId}/checkpoints/99/README.md`, 404, 'ERR_CHECKPOINT_NOT_FOUND', /has no checkpoint of round 99/],
        [`api/runs/${runId}/checkpoints?limit=0`, 400, 'ERR_BAD_PAGE', /limit="0" is not a whole number from 1 to 500: list a run's checkpoints a page at a time/],
        [`api/runs/${runId}/checkpoints?after=1e3`, 400, 'ERR_BAD_PAGE', /after="1e3" is not a whole number/],
        ['api/checkpoints/abc/config.json', 400, 'ERR_BAD_CHECKPOINT_ID', /64-character hex sha256/],
        [`api/checkpoints/${zeros}/config.json`, 404, 'ERR_CHECKPOINT_NOT_FOUND', /no checkpoint 0{64}/],
        [`api/checkpoints/${latest.sha256}/pytorch_model.bin`, 404, 'ERR_NO_SUCH_FILE', /README\.md, config\.json, model\.safetensors, .* and folder\.tar/],
        [`api/checkpoints/${latest.sha256}/a/b`, 404, 'ERR_NO_SUCH_FILE', /no subfolders/],
        [`api/checkpoints/${latest.sha256}/%2e%2e%2fpeer.key`, 404, 'ERR_NO_SUCH_FILE', /there is no/]
      ]
      for (const [path, status, code, message] of bad) {
        const err = await errorOf(base, path)
        assert.deepEqual([err.status, err.code], [status, code], path)
        assert.match(err.error, message, path)
      }
      const ranged = await get(base, `api/runs/${runId}/checkpoints/latest/model.safetensors`, { range: 'bytes=0-7' })
      assert.equal(ranged.status, 206)
      assert.equal((await get(base, 'healthz')).status, 200)
    } finally {
      await client.end()
      await Promise.all(agents.map(async (a) => { await a.stop() }))
      await coordinator?.stop()
      await database.drop()
    }
  })
})
