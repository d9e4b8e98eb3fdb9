import { describe, test } from 'vitest'
import assert from 'node:assert/strict'
import { MAX_TOKENIZER_FILE_BYTES, uploadTokenizerFile } from './tokenizer-upload.ts'

const SHA = `sha256:${'ab'.repeat(32)}`

describe('uploading a tokenizer.json from the form', () => {
  test('sends the file as it is and returns the name and vocabulary the coordinator gave it', async () => {
    const sent: Array<{ url: string, init: RequestInit }> = []
    const file = new File(['{"model":{"type":"WordLevel","vocab":{"a":0}}}'], 'tokenizer.json', { type: 'application/json' })
    const t = await uploadTokenizerFile(file, async (url, init) => { sent.push({ url, init }); return Response.json({ name: SHA, vocabSize: 1025 }) })
    assert.deepEqual(t, { name: SHA, vocabSize: 1025, fileName: 'tokenizer.json' })
    assert.equal(sent.length, 1)
    assert.equal(sent[0]!.url, '/api/tokenizers')
    assert.equal(sent[0]!.init.method, 'PUT')
    assert.equal(sent[0]!.init.body, file)
  })

  test('a refusal, an odd answer, an empty or huge file, or no connection is an error that says so', async () => {
    const file = new File(['{"model": {}}'], 'tok.json')
    await assert.rejects(uploadTokenizerFile(file, async () => Response.json({ code: 'ERR_INVALID_INPUT', error: 'model.type: expected BPE, WordPiece, Unigram or WordLevel' }, { status: 400 })),
      /^Error: tok\.json was refused: model\.type: expected BPE/)
    await assert.rejects(uploadTokenizerFile(file, async () => new Response('<html>', { status: 502 })), /refused tok\.json \(HTTP 502\)/)
    await assert.rejects(uploadTokenizerFile(file, async () => Response.json({ name: 'gpt2', vocabSize: 5 })), /something other than a tokenizer name/)
    await assert.rejects(uploadTokenizerFile(file, async () => { throw new TypeError('Failed to fetch') }), /could not reach the coordinator/)
    let called = false
    const send = async (): Promise<Response> => { called = true; return Response.json({}) }
    await assert.rejects(uploadTokenizerFile(new File([], 'empty.json'), send), /empty\.json is empty/)
    const huge = new File([new Uint8Array(MAX_TOKENIZER_FILE_BYTES + 1)], 'huge.json')
    await assert.rejects(uploadTokenizerFile(huge, send), /larger than the 32 MiB/)
    assert.equal(called, false, 'nothing was sent for a file refused here')
  })
})
