import { CodedError } from '@barnraise/protocol'
/** One line of the self-test table: a measured error against the bar it must stay under. */
export interface CheckRow {
  name: string
  /** relative error ||ours − ref|| / ||ref||, or another error measure when `relErr` is false */
  value: number
  threshold: number
  /** whether `value` is a relative error (and so counts toward max_rel_err) */
  relErr: boolean
  /** what `value` measures, when not a relative error */
  unit?: string
}

/** Whether a row is within its bar (NaN never is). */
export function rowPasses (row: CheckRow): boolean {
  return row.value <= row.threshold
}

/** A file the self-test cannot use, with what is wrong with it. */
export class SelftestError extends CodedError<'ERR_BAD_SELFTEST_FILE'> {
  constructor (message: string) {
    super('ERR_BAD_SELFTEST_FILE', message)
  }
}
