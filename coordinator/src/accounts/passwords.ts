import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { CoordinatorError } from '../errors.ts'

// scrypt is built into Node, so nothing has to be downloaded or compiled to hash passwords.
const N = 16384
const R = 8
const P = 1
const KEY_LENGTH = 32

/** scrypt runs at most this many at once (16 MiB and tens of ms each); more wait in line. */
const MAX_CONCURRENT = 4
/** Past this many waiting, a request is turned away rather than queued (a flood of sign-ins). */
const MAX_WAITING = 64
let running = 0
const waiting: Array<() => void> = []

async function derive (password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  if (running >= MAX_CONCURRENT) {
    if (waiting.length >= MAX_WAITING) throw new CoordinatorError('ERR_BUSY', 'the coordinator is busy checking passwords; try again in a moment')
    // The finishing call hands its slot straight to us, so `running` never overshoots.
    await new Promise<void>((resolve) => { waiting.push(resolve) })
  } else {
    running++
  }
  try {
    return await new Promise((resolve, reject) => {
      scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => { err === null ? resolve(key) : reject(err) })
    })
  } finally {
    const next = waiting.shift()
    if (next !== undefined) next()
    else running--
  }
}

/** Hashes a password as `scrypt$N$r$p$salt$hash` (base64), parameters kept so they can change later. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(16)
  const key = await derive(password, salt, N, R, P)
  return ['scrypt', N, R, P, salt.toString('base64'), key.toString('base64')].join('$')
}

/** Checks a password against a stored hash in constant time. */
export async function verifyPassword (password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false
  const expected = Buffer.from(hash, 'base64')
  const key = await derive(password, Buffer.from(salt, 'base64'), Number(n), Number(r), Number(p))
  return key.length === expected.length && timingSafeEqual(key, expected)
}
