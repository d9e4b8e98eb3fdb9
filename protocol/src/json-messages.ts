import { ProtocolError } from './errors.ts'
import { MAX_CONTROL_MESSAGE_BYTES } from './protocol-ids.ts'
import type { z } from 'zod'

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Serializes a control message, refusing one larger than the wire allows. */
export function encodeJsonMessage (message: unknown, maxBytes = MAX_CONTROL_MESSAGE_BYTES): Uint8Array {
  const bytes = encoder.encode(JSON.stringify(message))
  if (bytes.byteLength > maxBytes) {
    throw new ProtocolError('ERR_MESSAGE_TOO_LARGE', `message is ${bytes.byteLength} bytes; the limit is ${maxBytes}`)
  }
  return bytes
}

/** Parses bytes into a message of `schema`, or throws ERR_MALFORMED_MESSAGE saying what is wrong. */
export function decodeJsonMessage<S extends z.ZodType> (bytes: Uint8Array, schema: S): z.infer<S> {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(bytes))
  } catch {
    throw new ProtocolError('ERR_MALFORMED_MESSAGE', 'message is not valid UTF-8 JSON')
  }
  const parsed = schema.safeParse(value)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const where = issue?.path.length ? issue.path.join('.') : 'message'
    throw new ProtocolError('ERR_MALFORMED_MESSAGE', `${where}: ${issue?.message ?? 'invalid'}`)
  }
  return parsed.data
}
