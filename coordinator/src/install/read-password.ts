import { readFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { CoordinatorError } from '../errors.ts'

/** Reads all of stdin as text (for `--password-stdin`). */
async function readStdin (): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** Asks on the terminal without echoing what is typed. */
async function prompt (question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true })
  // Readline echoes through _writeToOutput; print the question once, then nothing per key.
  const out = rl as unknown as { _writeToOutput: (s: string) => void }
  process.stderr.write(question)
  out._writeToOutput = () => {}
  try {
    return await new Promise<string>((resolve) => { rl.question('', resolve) })
  } finally {
    rl.close()
    process.stderr.write('\n')
  }
}

/**
 * A password for an account made on the command line: from a file, from stdin, or from a prompt
 * on a terminal; never from argv, where shell history and `ps` would keep it. One trailing
 * newline is dropped, as `echo` and editors add one.
 */
export async function readPassword (source: { file?: string | undefined, stdin: boolean }): Promise<string> {
  let text: string
  if (source.file !== undefined) text = await readFile(source.file, 'utf8')
  else if (source.stdin) text = await readStdin()
  else if (process.stdin.isTTY === true) text = await prompt('password (at least 10 characters): ')
  else throw new CoordinatorError('ERR_INVALID_INPUT', 'no password given: pass --password-stdin and pipe it in, --password-file FILE, or run in a terminal to be asked')
  return text.replace(/\r?\n$/, '')
}
