import { ProtocolError } from '@barnraise/protocol'
import { CoordinatorError } from '../errors.ts'

/** Turns an error met while serving a request into the refusal a peer is sent; bugs get a generic reply. */
export function refusalFor (err: unknown): { ok: false, code: string, message: string } {
  if (err instanceof ProtocolError || err instanceof CoordinatorError) {
    return { ok: false, code: err.code, message: err.message }
  }
  return { ok: false, code: 'ERR_INTERNAL', message: 'the coordinator failed to handle this request; it has been logged' }
}
