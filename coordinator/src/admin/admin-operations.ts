import { z } from 'zod'
import type { Kysely } from 'kysely'
import type { Database } from '../db/schema.ts'
import { createRun, changeRunStatus } from '../runs/runs.ts'
import type { RunResources } from '../runs/runs.ts'
import type { ChangeFeed } from '../events/change-feed.ts'
import { createTokenForOrganization, createTokenInputSchema } from './admin-socket.ts'
import type { AdminHandler } from './admin-socket.ts'
import { signUp } from '../accounts/accounts.ts'
import { signUpInput } from '../api/routers/auth.ts'

const createRunInput = z.object({ spec: z.unknown(), start: z.boolean().default(false) })
const statusInput = z.object({ runId: z.string().uuid(), action: z.enum(['start', 'pause', 'resume', 'stop']) })

/** The operations the CLI performs, whether through a running coordinator's socket or on the database directly. */
export function adminOperations (deps: { db: Kysely<Database>, resources: RunResources, changes?: ChangeFeed }): Record<string, AdminHandler> {
  const { db, resources, changes } = deps
  return {
    '/tokens': async (body) => await createTokenForOrganization(db, createTokenInputSchema.parse(body)),
    '/runs': async (body) => {
      const input = createRunInput.parse(body)
      const run = await createRun(db, resources, input.spec)
      const status = input.start ? await changeRunStatus(db, run.id, 'start') : 'draft'
      changes?.publish('runs', run.id)
      return { id: run.id, name: run.spec.name, status, paramCount: run.spec.paramCount }
    },
    '/users': async (body) => {
      const user = await signUp(db, signUpInput.parse(body))
      return { id: user.id, email: user.email, roles: user.roles }
    },
    '/runs/status': async (body) => {
      const input = statusInput.parse(body)
      const status = await changeRunStatus(db, input.runId, input.action)
      changes?.publish('runs', input.runId)
      return { id: input.runId, status }
    }
  }
}
