import { RateLimitedError } from '../errors.ts'
import { WindowLimiter } from './window-limiter.ts'

/**
 * How often one address may sign up and one person may create runs, upload datasets or
 * pledge: each is expensive (a password hash, an initial checkpoint, a sharding pass) or leaves
 * rows every viewer of a page then loads, so a stranger's script cannot make the coordinator do
 * it without end.
 */
export interface ApiRates {
  signUps: WindowLimiter
  runCreations: WindowLimiter
  datasetUploads: WindowLimiter
  pledges: WindowLimiter
}

const HOUR_MS = 60 * 60_000

/** Each rate as a count per hour. */
export interface ApiRateLimits {
  signUpsPerHour: number
  runCreationsPerHour: number
  datasetUploadsPerHour: number
  pledgesPerHour: number
}

/** Generous for people, tight for scripts. */
export const DEFAULT_API_RATE_LIMITS: ApiRateLimits = { signUpsPerHour: 20, runCreationsPerHour: 30, datasetUploadsPerHour: 20, pledgesPerHour: 30 }

/** The limiters for these rates (the defaults where none is given). */
export function apiRates (limits: Partial<ApiRateLimits> = {}): ApiRates {
  const l = { ...DEFAULT_API_RATE_LIMITS, ...limits }
  return {
    signUps: new WindowLimiter({ limit: l.signUpsPerHour, windowMs: HOUR_MS }),
    runCreations: new WindowLimiter({ limit: l.runCreationsPerHour, windowMs: HOUR_MS }),
    datasetUploads: new WindowLimiter({ limit: l.datasetUploadsPerHour, windowMs: HOUR_MS }),
    pledges: new WindowLimiter({ limit: l.pledgesPerHour, windowMs: HOUR_MS })
  }
}

/** Counts one `what` for `key`, or throws `ERR_RATE_LIMITED` (with Retry-After) when over the limit. */
export function takeOrRefuse (limiter: WindowLimiter, key: string, what: string): void {
  const wait = limiter.retryAfter(key)
  if (wait > 0) throw new RateLimitedError(`too many ${what} in the last hour; try again in ${wait} s`, wait)
  limiter.hit(key)
}
