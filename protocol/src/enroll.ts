import { z } from 'zod'
import { hardwareProfileSchema } from './hardware.ts'
import { plainTextSchema } from './plain-text.ts'

/**
 * Sent by an agent on `/barnraise/enroll/1.0.0`. A node whose key is already enrolled may
 * omit the token: its identity is proven by the noise handshake.
 */
export const enrollRequestSchema = z.object({
  type: z.literal('enroll'),
  token: plainTextSchema({ min: 1, max: 200 }).optional(),
  /** public (the ledger, model cards, the Nodes page): plain text, one line */
  name: plainTextSchema({ min: 1, max: 100 }).optional(),
  agentVersion: plainTextSchema({ max: 50 }),
  hardware: hardwareProfileSchema
}).strict()

export const enrollAcceptedSchema = z.object({
  ok: z.literal(true),
  nodeId: z.string(),
  organizationId: z.string(),
  organizationName: z.string(),
  /** true when this peer was already enrolled and its existing row was reused */
  rejoined: z.boolean(),
  /**
   * Optional work-request fields added after the first protocol that this coordinator reads
   * (WORK_REQUEST_EXTENSIONS). Work requests are parsed strictly, so an agent sends such a field
   * only to a coordinator that lists it: a newer agent keeps working with an older coordinator,
   * which lists none. Unknown names are ignored.
   */
  workFields: z.array(z.string().max(50)).max(32).optional()
})

export const enrollRefusedSchema = z.object({
  ok: z.literal(false),
  code: z.string(),
  message: z.string()
})

export const enrollResponseSchema = z.discriminatedUnion('ok', [enrollAcceptedSchema, enrollRefusedSchema])

export type EnrollRequest = z.infer<typeof enrollRequestSchema>
export type EnrollResponse = z.infer<typeof enrollResponseSchema>

/** Sent by an enrolled agent on `/barnraise/heartbeat/1.0.0` every few seconds. */
export const heartbeatRequestSchema = z.object({
  type: z.literal('heartbeat'),
  status: z.enum(['idle', 'training', 'uploading', 'downloading'])
}).strict()

/** The most peer ids one heartbeat reply lists as revoked: 256 of the longest (34 KB) fit well inside a 64 KiB control message. */
export const MAX_REVOKED_PER_HEARTBEAT = 256
/** The longest peer id a heartbeat reply lists (as the swarm protocol's): a real one is about 52 characters. */
export const MAX_REVOKED_PEER_ID_CHARS = 128

export const heartbeatResponseSchema = z.discriminatedUnion('ok', [
  z.object({
    ok: z.literal(true),
    serverTime: z.string(),
    /**
     * Peer ids the coordinator revoked lately, newest first (added after the first protocol;
     * absent from older coordinators and when there are none). An agent stops serving them blob
     * blocks at once rather than when its remembered "yes" for them runs out. A list this agent
     * cannot read is dropped, not the heartbeat: the remembered yes still runs out on its own.
     */
    revoked: z.array(z.string().min(1).max(MAX_REVOKED_PEER_ID_CHARS)).max(MAX_REVOKED_PER_HEARTBEAT).optional().catch(undefined)
  }),
  enrollRefusedSchema
])

export type HeartbeatRequest = z.infer<typeof heartbeatRequestSchema>
export type HeartbeatResponse = z.infer<typeof heartbeatResponseSchema>
