// Failures of an executor, as values with a stable code, an actionable message and whether
// trying the same unit again can help. The work loop decides what to do from these alone.
import { CodedError } from '@barnraise/protocol'

export type ExecutorErrorCode =
  | 'ERR_PYTHON_MISSING'
  | 'ERR_PYTHON_TOO_OLD'
  | 'ERR_TORCH_MISSING'
  | 'ERR_TORCH_TOO_OLD'
  | 'ERR_CUDA_UNAVAILABLE'
  | 'ERR_BAD_DEVICE'
  | 'ERR_BAD_PRECISION'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_UNIT_TOO_LARGE'
  | 'ERR_UNIT_TOO_SLOW'
  /** several devices that could not form their torch.distributed group */
  | 'ERR_RANKS_START'
  | 'ERR_CHILD_CRASHED'
  /** a child that stopped answering (no progress, no answer) and was killed */
  | 'ERR_CHILD_HUNG'
  | 'ERR_CHILD_PROTOCOL'
  | 'ERR_NON_FINITE'
  | 'ERR_BAD_STATE'
  /** the unit's inputs are unusable: token ids past the vocabulary, a recipe AdamW refuses */
  | 'ERR_BAD_INPUT'
  | 'ERR_INVALID_CONFIG'
  /** the child crashed or hung on this unit, was restarted, and failed on it again */
  | 'ERR_UNIT_CRASHED'
  /** a scoring task still measuring at its round's deadline: its answer could no longer count, so it was abandoned */
  | 'ERR_SCORING_TOO_SLOW'
  | 'ERR_EXECUTOR'

/**
 * Codes that are about the unit, not the machine: the node declines that unit and keeps serving.
 * Anything else reaches the session, which reconnects and is handed the same unit again: right
 * for a dropped link, a loop for a unit that fails the same way every time.
 */
export const UNIT_REFUSAL_CODES: ReadonlySet<string> = new Set([
  'ERR_UNIT_TOO_LARGE', 'ERR_UNIT_TOO_SLOW', 'ERR_OUT_OF_MEMORY', 'ERR_BAD_INPUT', 'ERR_INVALID_CONFIG', 'ERR_NON_FINITE', 'ERR_UNIT_CRASHED'
])

/** An executor failure with a code to switch on and a message that says what to do. */
export class ExecutorError extends CodedError<ExecutorErrorCode> {
  /** true when the same unit may succeed on a second attempt (a crashed child, a full disk) */
  readonly retryable: boolean
  constructor (code: ExecutorErrorCode, message: string, options: { retryable?: boolean, cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause })
    this.retryable = options.retryable ?? false
  }
}

const KNOWN: ReadonlySet<string> = new Set<ExecutorErrorCode>([
  'ERR_PYTHON_MISSING', 'ERR_PYTHON_TOO_OLD', 'ERR_TORCH_MISSING', 'ERR_TORCH_TOO_OLD', 'ERR_CUDA_UNAVAILABLE', 'ERR_BAD_DEVICE',
  'ERR_BAD_PRECISION', 'ERR_OUT_OF_MEMORY', 'ERR_UNIT_TOO_LARGE', 'ERR_UNIT_TOO_SLOW', 'ERR_RANKS_START', 'ERR_CHILD_CRASHED', 'ERR_CHILD_HUNG', 'ERR_CHILD_PROTOCOL',
  'ERR_NON_FINITE', 'ERR_BAD_STATE', 'ERR_BAD_INPUT', 'ERR_INVALID_CONFIG', 'ERR_UNIT_CRASHED', 'ERR_EXECUTOR'
])

/** Maps a code the Python child sent to ours; codes we do not know become ERR_EXECUTOR with the child's code in the message. */
export function executorErrorFromChild (code: string, message: string, retryable: boolean): ExecutorError {
  if (KNOWN.has(code)) return new ExecutorError(code as ExecutorErrorCode, message, { retryable })
  return new ExecutorError('ERR_EXECUTOR', `${code}: ${message}`, { retryable })
}
