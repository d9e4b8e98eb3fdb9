// Worker thread body for tokenizer previews: an uploaded tokenizer's patterns are the uploader's,
// and one that backtracks without end would otherwise hold the coordinator's event loop. The
// thread lives across previews and keeps the last few tokenizers parsed (a tokenizer.json is up
// to 32 MiB; the upload form asks again at every keystroke).
import { parentPort } from 'node:worker_threads'
import { uploadedTokenizer } from './catalog.ts'
import type { TextTokenizer } from './text-tokenizer.ts'
import type { PreviewReply, PreviewRequest } from './tokenizer-preview.ts'

const KEEP = 4
const parsed = new Map<string, TextTokenizer>()
const post = (m: PreviewReply): void => { parentPort!.postMessage(m) }

parentPort!.on('message', (m: PreviewRequest) => {
  try {
    let tokenizer = parsed.get(m.sha256)
    if (tokenizer === undefined) {
      if (m.tokenizerJson === undefined) throw new Error(`tokenizer ${m.sha256} is not loaded in the preview worker`)
      tokenizer = uploadedTokenizer(m.tokenizerJson)
    }
    parsed.delete(m.sha256)
    parsed.set(m.sha256, tokenizer)
    if (parsed.size > KEEP) parsed.delete(parsed.keys().next().value!)
    const ids = Array.from(tokenizer.encode(m.text))
    post({ id: m.id, type: 'done', preview: { name: tokenizer.name, vocabSize: tokenizer.vocabSize, ids, pieces: ids.map((id) => tokenizer.decode([id])) } })
  } catch (err) {
    post({ id: m.id, type: 'error', message: (err as Error).message })
  }
})
