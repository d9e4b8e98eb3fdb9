import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The server tests use: DATABASE_URL, else the local one CI provides. */
export const ADMIN_DATABASE_URL = process.env.DATABASE_URL !== undefined && process.env.DATABASE_URL !== ''
  ? process.env.DATABASE_URL
  : 'postgres://postgres@127.0.0.1:5432/postgres'

/** Creates a fresh, uniquely named database on the test server; `drop` removes it. */
export async function createTestDatabase (): Promise<{ url: string, drop: () => Promise<void> }> {
  const name = `barnraise_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: ADMIN_DATABASE_URL })
  await admin.connect()
  try {
    await admin.query(`create database ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(ADMIN_DATABASE_URL)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL })
      await c.connect()
      try {
        await c.query(`drop database if exists ${name} with (force)`)
      } finally {
        await c.end()
      }
    }
  }
}
