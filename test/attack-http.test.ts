import { describe, test, beforeAll, afterAll } from 'vitest'
import assert from 'node:assert/strict'
import { readFile, stat } from 'node:fs/promises'
import { spawnSync } from 'node:child_process'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { connect } from 'node:net'
import { Coordinator } from '@barnraise/coordinator'
import { tempDir } from './support/cluster.ts'
import { sessionClient } from './support/session-client.ts'

const SIGN_UP = { email: 'eve@evil.test', password: 'eve-password-1', displayName: 'Eve', role: 'funder', organization: 'Eve Lab' }

/** A raw POST to one tRPC procedure, as a hostile page or script would send it. */
async function post (base: string, path: string, body: string, headers: Record<string, string>): Promise<Response> {
  return await fetch(new URL(`trpc/${path}`, base), { method: 'POST', body, headers })
}

/** The status line's code for a GET of `target` exactly as given (fetch would normalise it). */
async function rawGetStatus (port: number, target: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => { socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`) })
    let head = ''
    socket.on('data', (chunk: Buffer) => { head += chunk.toString('latin1') })
    socket.on('end', () => { resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0)) })
    socket.on('error', reject)
  })
}

describe('the HTTP side against a hostile browser and a password guesser', () => {
  let coordinator: Coordinator
  let dataDir: string
  beforeAll(async () => {
    dataDir = join(await tempDir('attack-http'), 'install')
    coordinator = await Coordinator.start({ dataDir, httpPort: 0, p2pPort: 0 })
    const admin = sessionClient(coordinator.url)
    await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'funder', setupCode: coordinator.setupCode! })
  })
  afterAll(async () => { await coordinator.stop() })

  const people = async (): Promise<number> => Number((await coordinator.database.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n)

  test('a cross-site page cannot make a signed-in browser change anything', async () => {
    const before = await people()
    const json = JSON.stringify(SIGN_UP)
    const cases: Array<[string, Record<string, string>]> = [
      ['another origin', { 'content-type': 'application/json', origin: 'https://evil.example' }],
      ['an opaque origin', { 'content-type': 'application/json', origin: 'null' }],
      ['a cross-site fetch', { 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' }],
      ['an HTML form (urlencoded)', { 'content-type': 'application/x-www-form-urlencoded' }],
      ['a multipart form', { 'content-type': 'multipart/form-data; boundary=x' }],
      ['a text/plain "simple" request', { 'content-type': 'text/plain' }]
    ]
    for (const [what, headers] of cases) {
      const res = await post(coordinator.url, 'auth.signUp', json, headers)
      assert.equal(res.status, 403, what)
      assert.match((await res.json() as { error: string }).error, /change anything|JSON body/, what)
    }
    assert.equal(await people(), before, 'nothing was written')
    // The dashboard's own requests (same origin, JSON) still work.
    const own = await post(coordinator.url, 'auth.signUp', json, { 'content-type': 'application/json', origin: new URL(coordinator.url).origin, 'sec-fetch-site': 'same-origin' })
    assert.equal(own.status, 200)
    assert.equal(await people(), before + 1)
  })

  test('pages carry a content security policy, nosniff and a frame policy; errors carry no stack trace', async () => {
    for (const path of ['', 'runs', 'trpc/runs.list', 'healthz']) {
      const res = await fetch(new URL(path, coordinator.url))
      await res.arrayBuffer()
      assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/, path)
      assert.match(res.headers.get('content-security-policy') ?? '', /script-src 'self'/, path)
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path)
      assert.equal(res.headers.get('x-frame-options'), 'DENY', path)
    }
    const bad = await fetch(new URL('trpc/runs.get?input=%7B%22id%22%3A%22nope%22%7D', coordinator.url))
    assert.equal(bad.status, 400)
    const text = await bad.text()
    assert.doesNotMatch(text, /"stack"|at file:|node_modules/)
    // Targets no URL parser accepts, and a pledge id that is not percent-encoding: the client's error, not ours.
    const { port } = new URL(coordinator.url)
    for (const target of ['//[/x', 'http://[/', '/api/pledges/%/statement.csv', '/api/pledges/%E0%A4%A/statement.csv']) {
      const status = await rawGetStatus(Number(port), target)
      assert.equal(status, 400, target)
    }
    assert.equal((await fetch(new URL('healthz', coordinator.url))).status, 200)
  })

  test('a batch of many calls in one request is refused', async () => {
    const paths = Array.from({ length: 50 }, () => 'runs.list').join(',')
    const res = await fetch(new URL(`trpc/${paths}?batch=1&input=%7B%7D`, coordinator.url))
    assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`)
    await res.arrayBuffer()
  })

  test('a stranger\'s large or deeply nested body is refused before it is parsed; an organizer\'s large spec is still read', async () => {
    const nested = '['.repeat(500_000) + ']'.repeat(500_000)
    const deep = await post(coordinator.url, 'auth.signIn', nested, { 'content-type': 'application/json' })
    assert.equal(deep.status, 413)
    await deep.arrayBuffer()
    // The large-body calls are large only for organizers (admins pass every role check).
    const anonymous = await post(coordinator.url, 'runs.create', nested, { 'content-type': 'application/json' })
    assert.equal(anonymous.status, 413)
    await anonymous.arrayBuffer()
    const admin = sessionClient(coordinator.url)
    await admin.auth.signIn.mutate({ email: 'root@example.org', password: 'root-password-1' })
    const shards = Array.from({ length: 6000 }, (_, i) => i.toString(16).padStart(64, '0'))
    const refused = await admin.runs.create.mutate({ spec: { name: 'many shards', rounds: 2, model: { preset: 'tiny' }, dataset: { source: 'shards', train: shards, validation: shards[0] } } }).then(() => null, (err: unknown) => err)
    assert.ok(refused instanceof Error)
    assert.ok(JSON.stringify(shards).length > 256 * 1024, 'the spec is larger than an ordinary call may be')
    assert.notEqual((refused as { data?: { httpStatus?: number } }).data?.httpStatus, 413, refused.message)
    assert.match(refused.message + JSON.stringify((refused as { data?: unknown }).data), /shard|dataset/i)
    assert.equal((await fetch(new URL('healthz', coordinator.url))).status, 200)
  })

  test('text with a NUL character is the caller\'s error (400, named), never the database\'s (500)', async () => {
    const res = await post(coordinator.url, 'auth.signIn', JSON.stringify({ email: 'root\u0000@example.org', password: 'x' }), { 'content-type': 'application/json' })
    assert.equal(res.status, 400)
    assert.match(await res.text(), /NUL character/)
    const signUp = await post(coordinator.url, 'auth.signUp', JSON.stringify({ ...SIGN_UP, email: 'nul@example.org', organization: 'Lab\u0000' }), { 'content-type': 'application/json' })
    assert.equal(signUp.status, 400)
    await signUp.arrayBuffer()
    // A password is hashed, never stored as text: NUL in it is only a wrong password.
    const password = await post(coordinator.url, 'auth.signIn', JSON.stringify({ email: 'nobody@example.org', password: 'pass\u0000word' }), { 'content-type': 'application/json' })
    assert.equal(password.status, 400)
    assert.match(await password.text(), /wrong email or password/)
  })

  test('password guessing is throttled per account (HTTP 429, Retry-After), even for the right password', async () => {
    const guess = async (password: string): Promise<Response> =>
      await post(coordinator.url, 'auth.signIn', JSON.stringify({ email: 'root@example.org', password }), { 'content-type': 'application/json' })
    for (let i = 0; i < 10; i++) assert.equal((await guess(`wrong-guess-${i}`)).status, 400)
    const throttled = await guess('another-guess')
    assert.equal(throttled.status, 429)
    assert.ok(Number(throttled.headers.get('retry-after')) > 0)
    assert.equal((await guess('root-password-1')).status, 429, 'the right password waits too')
    // Another account from the same address is not locked out yet (the address limit is higher).
    const other = await post(coordinator.url, 'auth.signIn', JSON.stringify({ email: 'eve@evil.test', password: 'eve-password-1' }), { 'content-type': 'application/json' })
    assert.equal(other.status, 200)
  })

  test('the data directory is its owner’s only, and so is the admin socket', async () => {
    assert.equal((await stat(dataDir)).mode & 0o777, 0o700)
    assert.equal((await stat(join(dataDir, 'admin.sock'))).mode & 0o777, 0o600)
  })
})

/** One HTTPS request that trusts only `ca`, returning status and headers. */
async function httpsPost (url: string, body: string, ca: string): Promise<{ status: number, headers: Record<string, string | string[] | undefined> }> {
  return await new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume()
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers }) })
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('the session cookie is Secure when the dashboard is served over HTTPS', () => {
  test('served directly with --tls-cert/--tls-key', async () => {
    const dir = await tempDir('tls')
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      '-days', '1', '-nodes', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { encoding: 'utf8' })
    assert.equal(made.status, 0, made.stderr)
    const tls = { cert: await readFile(join(dir, 'cert.pem'), 'utf8'), key: await readFile(join(dir, 'key.pem'), 'utf8') }
    const coordinator = await Coordinator.start({ dataDir: join(dir, 'install'), httpPort: 0, p2pPort: 0, tls })
    try {
      assert.match(coordinator.url, /^https:\/\/127\.0\.0\.1:/)
      const res = await httpsPost(new URL('trpc/auth.signUp', coordinator.url).toString(), JSON.stringify({ ...SIGN_UP, setupCode: coordinator.setupCode }), tls.cert)
      assert.equal(res.status, 200)
      assert.match(String(res.headers['set-cookie']), /; Secure/)
      assert.equal(res.headers['strict-transport-security'], 'max-age=31536000', 'browsers keep to HTTPS')
    } finally {
      await coordinator.stop()
    }
  })

  test('behind a proxy the operator declared trusted, and only then; the address is the one the proxy wrote', async () => {
    for (const trustProxy of [true, false]) {
      const coordinator = await Coordinator.start({ dataDir: join(await tempDir('proxy'), 'install'), httpPort: 0, p2pPort: 0, trustProxy, rates: { signUpsPerHour: 2, signUpsPerNetworkPerHour: 3 } })
      try {
        const res = await post(coordinator.url, 'auth.signUp', JSON.stringify({ ...SIGN_UP, setupCode: coordinator.setupCode }), { 'content-type': 'application/json', 'x-forwarded-proto': 'https' })
        assert.equal(res.status, 200)
        const cookie = res.headers.get('set-cookie') ?? ''
        assert.equal(/; Secure/.test(cookie), trustProxy, `trustProxy ${String(trustProxy)}: ${cookie}`)
        if (trustProxy) {
          // A proxy that appends: the client's own first entry changes every time, the proxy's last does not.
          const statuses = []
          for (let i = 0; i < 3; i++) {
            const signUp = await post(coordinator.url, 'auth.signUp', JSON.stringify({ ...SIGN_UP, email: `sybil-${i}@evil.test`, organization: `Sybil ${i}` }), { 'content-type': 'application/json', 'x-forwarded-for': `10.9.${i}.1, 203.0.113.7` })
            statuses.push(signUp.status)
            await signUp.arrayBuffer()
          }
          assert.deepEqual(statuses, [200, 200, 429], 'sign-ups are counted against 203.0.113.7, whatever the client put first')
          const elsewhere = await post(coordinator.url, 'auth.signUp', JSON.stringify({ ...SIGN_UP, email: 'someone@else.test', organization: 'Else Lab' }), { 'content-type': 'application/json', 'x-forwarded-for': '203.0.113.8' })
          assert.equal(elsewhere.status, 200, 'another address has its own count')

          // One IPv6 /48 (a customer's 65,536 /64s) counts as one network: 3 sign-ups an hour here.
          const fromNetwork = []
          for (let i = 0; i < 5; i++) {
            const signUp = await post(coordinator.url, 'auth.signUp', JSON.stringify({ ...SIGN_UP, email: `v6-${i}@evil.test`, organization: `V6 ${i}` }), { 'content-type': 'application/json', 'x-forwarded-for': `2001:db8:7:${i}::1` })
            fromNetwork.push([signUp.status, signUp.status === 429 ? (await signUp.json() as { error: { message: string } }).error.message : ''])
          }
          assert.deepEqual(fromNetwork.map(([status]) => status), [200, 200, 200, 429, 429], 'five /64s of one /48')
          assert.match(String(fromNetwork[3]![1]), /too many sign-ups from this network in the last hour/)
          const otherNetwork = await post(coordinator.url, 'auth.signUp', JSON.stringify({ ...SIGN_UP, email: 'v6-other@else.test', organization: 'V6 Else' }), { 'content-type': 'application/json', 'x-forwarded-for': '2001:db8:8::1' })
          assert.equal(otherNetwork.status, 200, 'another /48 has its own count')
        }
      } finally {
        await coordinator.stop()
      }
    }
  })
})

describe('an install bounds what a run may ask of it', () => {
  test('a run over the install limits is refused with the limit named, and nothing is created', async () => {
    const coordinator = await Coordinator.start({ dataDir: join(await tempDir('limits'), 'install'), httpPort: 0, p2pPort: 0, limits: { maxParams: 150_000, maxSeqLen: 64 } })
    try {
      const admin = sessionClient(coordinator.url)
      await admin.auth.signUp.mutate({ email: 'root@example.org', password: 'root-password-1', displayName: 'Root', role: 'organizer', setupCode: coordinator.setupCode! })
      const refused = await admin.runs.create.mutate({ spec: { name: 'too big', rounds: 2, model: { preset: 'small' }, recipe: { seqLen: 128 } } }).then(() => null, (err: unknown) => err)
      assert.ok(refused instanceof Error)
      const fields = (refused as { data?: { fields?: Array<{ field: string, message: string }> } }).data?.fields ?? []
      assert.deepEqual(fields.map((f) => f.field), ['model', 'recipe.seqLen'])
      assert.match(fields[0]!.message, /--max-params/)
      assert.equal((await admin.runs.list.query()).length, 0, 'no run was created')
      const ok = await admin.runs.create.mutate({ spec: { name: 'fits', rounds: 2, model: { preset: 'tiny' }, recipe: { seqLen: 32 } } })
      assert.ok(ok.id)
    } finally {
      await coordinator.stop()
    }
  })
})
