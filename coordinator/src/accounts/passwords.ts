import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto'

// scrypt is built into Node, so nothing has to be downloaded or compiled to hash passwords.
const N = 16384
const R = 8
const P = 1
const KEY_LENGTH = 32

async function derive (password: string, salt: Buffer, n: number, r: number, p: number): Promise<Buffer> {
  return await new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => { err === null ? resolve(key) : reject(err) })
  })
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
