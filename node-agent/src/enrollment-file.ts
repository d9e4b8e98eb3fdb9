import { readFile, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { z } from 'zod'

const enrollmentSchema = z.object({
  coordinator: z.string(),
  nodeId: z.string(),
  organizationId: z.string(),
  organizationName: z.string(),
  peerId: z.string()
})
export type Enrollment = z.infer<typeof enrollmentSchema>

/** Reads what the agent remembers of its enrollment, or undefined before the first join. */
export async function readEnrollment (dataDir: string): Promise<Enrollment | undefined> {
  let text: string
  try {
    text = await readFile(join(dataDir, 'enrollment.json'), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  const parsed = enrollmentSchema.safeParse(JSON.parse(text))
  if (!parsed.success) throw new Error(`${join(dataDir, 'enrollment.json')} is corrupt; delete it and join again with a token`)
  return parsed.data
}

/** Saves the enrollment atomically (write then rename). */
export async function writeEnrollment (dataDir: string, enrollment: Enrollment): Promise<void> {
  const path = join(dataDir, 'enrollment.json')
  await writeFile(path + '.tmp', JSON.stringify(enrollment, null, 2))
  await rename(path + '.tmp', path)
}
