import { CodedError } from '@barnraise/protocol'
export type OptimizerErrorCode = 'ERR_SIZE_MISMATCH' | 'ERR_BAD_OPTION' | 'ERR_BAD_STATE'

/** A misused optimizer (wrong sizes, bad hyperparameters, foreign state), with a code a caller can switch on. */
export class OptimizerError extends CodedError<OptimizerErrorCode> {}

/** Throws ERR_BAD_OPTION unless `value` is a finite number within [min, max]. */
export function requireOption (name: string, value: number, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new OptimizerError('ERR_BAD_OPTION', `${name} = ${value} must be a finite number in [${min}, ${max}]`)
  }
}

/** Throws ERR_SIZE_MISMATCH unless `array` holds exactly `size` values. */
export function requireSize (what: string, array: Float32Array, size: number): void {
  if (!(array instanceof Float32Array) || array.length !== size) {
    throw new OptimizerError('ERR_SIZE_MISMATCH', `${what} must be a Float32Array of ${size} values, got ${array instanceof Float32Array ? array.length : typeof array}`)
  }
}
