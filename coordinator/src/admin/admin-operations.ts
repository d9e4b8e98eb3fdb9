import { z } from 'zod'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { createRun, changeRunStatus } from '../runs/runs.ts'
import type { BlobStore } from '../blobs/blob-store.ts'
import type { ChangeFeed } from '../events/change-feed.ts'
import { createOperatorToken, createTokenInputSchema } from '../nodes/operator-tokens.ts'
import type { AdminHandler } from './admin-socket.ts'
import { createAccount, setPassword } from '../accounts/accounts.ts'
import { SELF_SERVE_ROLES } from '../accounts/roles.ts'

import { listRunSummaries, resolveRunRef } from '../runs/run-queries.ts'
import { CoordinatorError } from '../errors.ts'
import { DEFAULT_INSTALL_LIMITS } from '../runs/install-limits.ts'
import type { InstallLimits } from '../runs/install-limits.ts'

const createRunInput = z.object({ spec: z.unknown(), start: z.boolean().default(false), owner: z.string().trim().toLowerCase().max(200).optional() })
const createAccountInput = z.object({
  email: z.string().trim().email('enter a valid email address').max(200),
  password: z.string().min(10, 'use at least 10 characters').max(200),
  displayName: z.string().trim().min(1, 'give a name (--name)').max(100),
  role: z.enum(SELF_SERVE_ROLES).default('organizer'),
  organization: z.string().trim().max(100).optional(),
  admin: z.boolean().default(false)
})
const setPasswordInput = z.object({
  email: z.string().trim().email('enter a valid email address').max(200),
  password: z.string().min(10, 'use at least 10 characters').max(200)
})
const statusInput = z.object({ run: z.string().trim().min(1, 'give a run id (or its first characters, or its name)').max(200), action: z.enum(['start', 'pause', 'resume', 'stop']) })

/** Parses an admin request body, turning schema failures into one readable line. */
function parse<T> (schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body)
  if (parsed.success) return parsed.data
  throw new CoordinatorError('ERR_INVALID_INPUT', parsed.error.issues.map((i) => `${i.path.join('.') || 'request'}: ${i.message}`).join('; '))
}

/** The operations the CLI performs, whether through a running coordinator's socket or on the database directly. */
export function adminOperations (deps: { db: Kysely<Database>, blobs: BlobStore, changes?: ChangeFeed, limits?: InstallLimits }): Record<string, AdminHandler> {
  const { db, blobs, changes } = deps
  const limits = deps.limits ?? DEFAULT_INSTALL_LIMITS
  return {
    '/tokens': async (body) => await createOperatorToken(db, parse(createTokenInputSchema, body)),
    '/runs': async (body) => {
      const input = parse(createRunInput, body)
      let ownerId: string | null = null
      if (input.owner !== undefined) {
        const owner = await db.selectFrom('users').select(['id', 'roles']).where('email', '=', input.owner).executeTakeFirst()
        if (owner === undefined) throw new CoordinatorError('ERR_NOT_FOUND', `no account ${input.owner}; create it first with: pnpm coordinator user create`)
        if (!owner.roles.includes('organizer') && !owner.roles.includes('admin')) throw new CoordinatorError('ERR_INVALID_INPUT', `${input.owner} is not an organizer`)
        ownerId = owner.id
      }
      // The operator, on the coordinator's machine, may launch on any dataset for any organizer.
      const run = await createRun({ db, blobs }, input.spec, ownerId, limits, { anyDataset: true })
      const status = input.start ? await changeRunStatus(db, run.id, 'start') : 'draft'
      changes?.publish('runs', run.id)
      // Launched on a dataset still uploading or tokenizing (runs/awaiting-data.ts).
      const waiting = run.spec.trainShards.length === 0 && run.spec.dataset.source === 'dataset'
      return { id: run.id, name: run.spec.name, status, paramCount: run.spec.paramCount, awaitingDataset: waiting }
    },
    '/users/password': async (body) => {
      const input = parse(setPasswordInput, body)
      return await setPassword(db, { email: input.email }, input.password)
    },
    '/users': async (body) => {
      const user = await createAccount(db, parse(createAccountInput, body))
      return { id: user.id, email: user.email, roles: user.roles }
    },
    '/runs/status': async (body) => {
      const input = parse(statusInput, body)
      const run = await resolveRunRef(db, input.run)
      const status = await changeRunStatus(db, run.id, input.action)
      changes?.publish('runs', run.id)
      return { id: run.id, name: run.name, status }
    },
    '/runs/list': async () => await listRunSummaries(db)
  }
}
