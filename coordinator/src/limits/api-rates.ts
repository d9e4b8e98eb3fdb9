import { RateLimitedError } from '../errors.ts'
import { WindowLimiter } from './window-limiter.ts'

/**
 * How often one address may sign up and one person may create runs or upload datasets: each
 * is expensive (a password hash, an initial checkpoint, a sharding pass) or leaves rows behind,
 * so a stranger's script cannot make the coordinator do it without end.
 */
export interface ApiRates {
  signUps: WindowLimiter
  runCreations: WindowLimiter
  datasetUploads: WindowLimiter
}

const HOUR_MS = 60 * 60_000

/** Generous for people, tight for scripts. */
export function defaultApiRates (): ApiRates {
  return {
    signUps: new WindowLimiter({ limit: 10, windowMs: HOUR_MS }),
    runCreations: new WindowLimiter({ limit: 30, windowMs: HOUR_MS }),
    datasetUploads: new WindowLimiter({ limit: 20, windowMs: HOUR_MS })
  }
}

/** Counts one `what` for `key`, or throws `ERR_RATE_LIMITED` (with Retry-After) when over the limit. */
export function takeOrRefuse (limiter: WindowLimiter, key: string, what: string): void {
  const wait = limiter.retryAfter(key)
  if (wait > 0) throw new RateLimitedError(`too many ${what} in the last hour; try again in ${wait} s`, wait)
  limiter.hit(key)
}
