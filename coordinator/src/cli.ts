#!/usr/bin/env node
import { parseArgs } from 'node:util'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { Coordinator, adminSocketPath } from './coordinator.ts'
import { openDatabase } from './db/open-database.ts'
import { createTokenForOrganization, createTokenInputSchema, requestTokenOverSocket } from './admin/admin-socket.ts'

const USAGE = `usage: barnraise-coordinator <command> [options]

commands:
  serve                      run the coordinator (libp2p host, HTTP API, dashboard)
    --data-dir DIR           where state lives (default .data/coordinator)
    --database-url URL       use this Postgres instead of embedded PGlite (or set DATABASE_URL)
    --host HOST              interface to listen on (default 127.0.0.1; 0.0.0.0 to accept other machines)
    --http-port N            dashboard and API port (default 8080; 0 picks a free one)
    --p2p-port N             libp2p TCP port (default 4001; 0 picks a free one)
  token create --org NAME    issue an enrollment token for an organization (created if new)
    --uses N                 how many nodes may enroll with it (default 1)
    --expires-in HOURS       token lifetime (default: no expiry)
    --data-dir DIR, --database-url URL as above
  help                       this text
`

function fail (message: string): number {
  process.stderr.write(`barnraise-coordinator: ${message}\n`)
  return 2
}

async function serve (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string', default: '.data/coordinator' },
      'database-url': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'http-port': { type: 'string', default: '8080' },
      'p2p-port': { type: 'string', default: '4001' }
    }
  })
  const httpPort = Number(values['http-port'])
  const p2pPort = Number(values['p2p-port'])
  if (!Number.isInteger(httpPort) || httpPort < 0 || httpPort > 65535) return fail('--http-port must be a port number')
  if (!Number.isInteger(p2pPort) || p2pPort < 0 || p2pPort > 65535) return fail('--p2p-port must be a port number')
  const coordinator = await Coordinator.start({
    dataDir: resolve(values['data-dir']),
    databaseUrl: values['database-url'] ?? process.env.DATABASE_URL,
    host: values.host,
    httpPort,
    p2pPort
  })
  for (const ma of coordinator.multiaddrs) process.stdout.write(`coordinator multiaddr: ${ma}\n`)
  process.stdout.write(`coordinator database: ${coordinator.database.kind}\n`)
  process.stdout.write(`coordinator dashboard: ${coordinator.url}\n`)
  await new Promise<void>((resolveStop) => {
    const stop = (): void => {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
      process.stdout.write('coordinator: stopping\n')
      coordinator.stop().then(resolveStop, resolveStop)
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  return 0
}

async function tokenCreate (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      org: { type: 'string' },
      uses: { type: 'string', default: '1' },
      'expires-in': { type: 'string' },
      'data-dir': { type: 'string', default: '.data/coordinator' },
      'database-url': { type: 'string' },
      json: { type: 'boolean', default: false }
    }
  })
  const parsed = createTokenInputSchema.safeParse({
    organization: values.org,
    maxUses: Number(values.uses),
    expiresInHours: values['expires-in'] === undefined ? undefined : Number(values['expires-in'])
  })
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return fail(`token create: ${issue?.path.join('.') === 'organization' ? '--org NAME is required' : `${issue?.path.join('.')}: ${issue?.message}`}`)
  }
  const dataDir = resolve(values['data-dir'])
  const databaseUrl = values['database-url'] ?? process.env.DATABASE_URL
  const socket = adminSocketPath(dataDir)
  let token
  if (existsSync(socket)) {
    token = await requestTokenOverSocket(socket, parsed.data)
  } else {
    const database = await openDatabase({ dataDir, databaseUrl })
    try {
      token = await createTokenForOrganization(database.db, parsed.data)
    } finally {
      await database.close()
    }
  }
  if (values.json) {
    process.stdout.write(JSON.stringify(token) + '\n')
  } else {
    process.stdout.write(`enrollment token for ${token.organizationName} (uses: ${token.maxUses}${token.expiresAt === null ? '' : `, expires ${token.expiresAt.toISOString()}`}):\n${token.token}\n`)
    process.stdout.write('join with: barnraise-agent join --coordinator <multiaddr> --token <token>\n')
  }
  return 0
}

async function main (argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve': return await serve(rest)
    case 'token':
      if (rest[0] === 'create') return await tokenCreate(rest.slice(1))
      return fail('unknown token subcommand; try: token create --org NAME')
    case undefined: case 'help': case '--help': case '-h':
      process.stdout.write(USAGE)
      return command === undefined ? 2 : 0
    default:
      return fail(`unknown command "${command}"\n${USAGE}`)
  }
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code }, (err: unknown) => {
  process.stderr.write(`barnraise-coordinator: ${(err as Error).message}\n`)
  process.exitCode = 1
})
