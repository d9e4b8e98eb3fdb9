import { open } from 'node:fs/promises'

/** The longest token the coordinator takes (protocol/src/enroll.ts); a token file is read no further than a little past it. */
const MAX_TOKEN_CHARS = 200
const READ_LIMIT = 4096

/** An enrollment token read from a file, or why it cannot be used. */
export type TokenFileResult =
  | { ok: true, token: string, warning?: string }
  | { ok: false, message: string }

/**
 * Reads `join --token-file PATH`: the token is the file's text without the spaces and line
 * breaks around it (`echo brt_… > token` writes a line feed), so it is in neither argv (which
 * `ps` shows every user) nor the shell's history. PATH may be a pipe too (`<(pass show …)`,
 * /dev/stdin), read to its end. A regular file other users may read is used with a warning,
 * not refused as an open key is (data-dir.ts): a token is spent by the join (one use unless the
 * lab admin chose more), the lab admin sees and can revoke every node it enrolled, and a file's
 * own mode says nothing of the folders above it, so a refusal would stop unattended installs
 * whose file nobody else can reach. On Windows modes say nothing, so there is no warning.
 */
export async function readTokenFile (path: string, platform: NodeJS.Platform = process.platform): Promise<TokenFileResult> {
  let text: string
  let shared: number | undefined
  try {
    const file = await open(path, 'r')
    try {
      const stat = await file.stat()
      if (stat.isDirectory()) return { ok: false, message: `--token-file ${path} is a directory; give the path of a file holding the token` }
      // A pipe (`--token-file <(pass show lab-token)`) or /dev/stdin has no mode worth judging.
      if (stat.isFile()) shared = stat.mode
      const buffer = Buffer.alloc(READ_LIMIT)
      let length = 0
      for (;;) {
        // Sequential reads (no position): a pipe delivers in pieces and cannot seek.
        const { bytesRead } = await file.read(buffer, length, READ_LIMIT - length, null)
        if (bytesRead === 0) break
        length += bytesRead
        if (length === READ_LIMIT) return { ok: false, message: `--token-file ${path} is larger than a token (${READ_LIMIT} bytes or more); give the file holding just the token from your lab admin` }
      }
      text = buffer.subarray(0, length).toString('utf8')
    } finally {
      await file.close()
    }
  } catch (err) {
    return { ok: false, message: `cannot read --token-file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the path of a file holding the token from your lab admin` }
  }
  const token = text.trim()
  if (token === '') return { ok: false, message: `--token-file ${path} is empty; put the token from your lab admin in it` }
  if (/\s/.test(token)) return { ok: false, message: `--token-file ${path} holds more than one word; a token is one word (brt_…): put just the token in it` }
  if (token.length > MAX_TOKEN_CHARS) return { ok: false, message: `--token-file ${path} holds ${token.length} characters; a token has at most ${MAX_TOKEN_CHARS}: put just the token in it` }
  if (platform === 'win32' || shared === undefined || (shared & 0o077) === 0) return { ok: true, token }
  return {
    ok: true,
    token,
    warning: `--token-file ${path} is open to other users of this machine (mode ${(shared & 0o777).toString(8).padStart(4, '0')}): while the token has uses left, whoever reads it can enroll a machine into your lab. ` +
      `Run chmod 600 '${path.replace(/'/g, '\'\\\'\'')}', or delete the file once this node has joined (later joins need no token)`
  }
}
