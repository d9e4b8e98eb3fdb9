import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { CoordinatorError } from '../errors.ts'

// scrypt is built into Node, so nothing has to be downloaded or compiled to hash passwords.
const N = 16384
const R = 8
const P = 1
const KEY_LENGTH = 32

/**
 * Where a password check may run. `familiar` names the account when it is checked at an address
 * it signed in from lately (the sign-in throttle knows): such checks have a share of the
 * checker that strangers cannot fill, so a flood of sign-ins on made-up emails does not turn
 * the owner away where they usually sign in.
 */
export interface CheckOptions {
  familiar?: string
}

/** The places a `CheckQueue` has. */
export interface CheckQueueLimits {
  /** checks running at once */
  running: number
  /** of those, how many strangers' checks may hold: the rest are kept for familiar ones */
  strangerRunning: number
  /** strangers' checks that may wait; past that one is turned away (`ERR_BUSY`) */
  strangerWaiting: number
  /** familiar checks that may wait, in a line of their own that is served first */
  familiarWaiting: number
  /** one account's checks in the familiar share at once (more wait as strangers'), so one account (an attacker's own) cannot take the share */
  perFamiliarAccount: number
}

/** scrypt takes 16 MiB and tens of ms a check: 4 at once, one of them kept for familiar checks, 64 waiting. */
export const PASSWORD_CHECK_LIMITS: CheckQueueLimits = { running: 4, strangerRunning: 3, strangerWaiting: 48, familiarWaiting: 16, perFamiliarAccount: 2 }

/**
 * Runs expensive checks a few at once; more wait in line, and past the line's length are turned
 * away rather than queued (a flood of sign-ins). Familiar checks wait in their own line, served
 * first, and may take every running place; strangers' may take all but the reserved ones.
 * What it holds is bounded by its limits.
 */
export class CheckQueue {
  readonly #limits: CheckQueueLimits
  #running = 0
  #strangersRunning = 0
  readonly #familiarLine: Array<() => void> = []
  readonly #strangerLine: Array<() => void> = []
  /** familiar checks running or waiting, per account */
  readonly #perAccount = new Map<string, number>()

  constructor (limits: CheckQueueLimits) {
    this.#limits = limits
  }

  /** Runs `work` once a place is free, or rejects with `ERR_BUSY` when its line is full. */
  async run<T>(work: () => Promise<T>, options: CheckOptions = {}): Promise<T> {
    const place = this.#enter(options.familiar)
    if (place.wait !== undefined) await place.wait
    try {
      return await work()
    } finally {
      this.#leave(place.account)
    }
  }

  /** Takes a running place or one in a line (a familiar check past its share takes a stranger's), or throws ERR_BUSY. */
  #enter (familiar: string | undefined): { account: string | undefined, wait?: Promise<void> } {
    const limits = this.#limits
    const held = familiar === undefined ? 0 : this.#perAccount.get(familiar) ?? 0
    if (familiar !== undefined && held < limits.perFamiliarAccount) {
      const startNow = this.#running < limits.running && this.#familiarLine.length === 0
      if (startNow || this.#familiarLine.length < limits.familiarWaiting) {
        this.#perAccount.set(familiar, held + 1)
        if (startNow) {
          this.#running++
          return { account: familiar }
        }
        return { account: familiar, wait: new Promise<void>((resolve) => { this.#familiarLine.push(resolve) }) }
      }
    }
    const startNow = this.#running < limits.running && this.#strangersRunning < limits.strangerRunning &&
      this.#strangerLine.length === 0 && this.#familiarLine.length === 0
    if (startNow) {
      this.#running++
      this.#strangersRunning++
      return { account: undefined }
    }
    if (this.#strangerLine.length >= limits.strangerWaiting) throw new CoordinatorError('ERR_BUSY', 'the coordinator is busy checking passwords; try again in a moment')
    return { account: undefined, wait: new Promise<void>((resolve) => { this.#strangerLine.push(resolve) }) }
  }

  #leave (account: string | undefined): void {
    this.#running--
    if (account === undefined) {
      this.#strangersRunning--
    } else {
      const held = (this.#perAccount.get(account) ?? 1) - 1
      if (held > 0) this.#perAccount.set(account, held)
      else this.#perAccount.delete(account)
    }
    // Places are counted as taken before the waiter is woken, so `running` never overshoots.
    while (this.#running < this.#limits.running) {
      const familiar = this.#familiarLine.shift()
      if (familiar !== undefined) {
        this.#running++
        familiar()
        continue
      }
      if (this.#strangersRunning >= this.#limits.strangerRunning) return
      const stranger = this.#strangerLine.shift()
      if (stranger === undefined) return
      this.#running++
      this.#strangersRunning++
      stranger()
    }
  }
}

const checks = new CheckQueue(PASSWORD_CHECK_LIMITS)

async function derive (password: string, salt: Buffer, n: number, r: number, p: number, options: CheckOptions): Promise<Buffer> {
  return await checks.run(async () => await new Promise<Buffer>((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => { err === null ? resolve(key) : reject(err) })
  }), options)
}

/** Hashes a password as `scrypt$N$r$p$salt$hash` (base64), parameters kept so they can change later. */
export async function hashPassword (password: string, options: CheckOptions = {}): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt, N, R, P, options)
  return ['scrypt', N, R, P, salt.toString('base64'), key.toString('base64')].join('$')
}

/** Checks a password against a stored hash in constant time. */
export async function verifyPassword (password: string, stored: string, options: CheckOptions = {}): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, 'base64')
  const key = await derive(password, Buffer.from(salt, 'base64'), Number(n), Number(r), Number(p), options)
  return key.length === expected.length && timingSafeEqual(key, expected)
}
