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
  /** Sign-ups from one network (an IPv6 /48: a customer's 65,536 /64s would each have the per-address limit) */
  signUpNetworks: WindowLimiter
  runCreations: WindowLimiter
  datasetUploads: WindowLimiter
  pledges: WindowLimiter
}

const HOUR_MS = 60 * 60_000

/** Each rate as a count per hour. */
export interface ApiRateLimits {
  signUpsPerHour: number
  signUpsPerNetworkPerHour: number
  runCreationsPerHour: number
  datasetUploadsPerHour: number
  pledgesPerHour: number
}

/** Generous for people, tight for scripts. */
export const DEFAULT_API_RATE_LIMITS: ApiRateLimits = { signUpsPerHour: 20, signUpsPerNetworkPerHour: 100, runCreationsPerHour: 30, datasetUploadsPerHour: 20, pledgesPerHour: 30 }

/** The limiters for these rates (the defaults where none is given). */
export function apiRates (limits: Partial<ApiRateLimits> = {}): ApiRates {
  const l = { ...DEFAULT_API_RATE_LIMITS, ...limits }
  return {
    signUps: new WindowLimiter({ limit: l.signUpsPerHour, windowMs: HOUR_MS }),
    signUpNetworks: new WindowLimiter({ limit: l.signUpsPerNetworkPerHour, windowMs: HOUR_MS }),
    runCreations: new WindowLimiter({ limit: l.runCreationsPerHour, windowMs: HOUR_MS }),
    datasetUploads: new WindowLimiter({ limit: l.datasetUploadsPerHour, windowMs: HOUR_MS }),
    pledges: new WindowLimiter({ limit: l.pledgesPerHour, windowMs: HOUR_MS })
  }
}

/** Counts one `what` for `key`, or throws `ERR_RATE_LIMITED` (with Retry-After) when over the limit. */
export function takeOrRefuse (limiter: WindowLimiter, key: string, what: string): void {
  takeOrRefuseAll([[limiter, key, what]])
}

/**
 * Counts one event in each of `limits` (limiter, key, what it counts), or in none of them and
 * throws `ERR_RATE_LIMITED` naming the first that is full, with the longest wait: a refusal
 * by one limit spends nothing of the others.
 */
export function takeOrRefuseAll (limits: Array<[WindowLimiter, string, string]>): void {
  const waits = limits.map(([limiter, key]) => limiter.retryAfter(key))
  const full = waits.findIndex((w) => w > 0)
  if (full >= 0) {
    const wait = Math.max(...waits)
    throw new RateLimitedError(`too many ${limits[full]![2]} in the last hour; try again in ${wait} s`, wait)
  }
  for (const [limiter, key] of limits) limiter.hit(key)
}
