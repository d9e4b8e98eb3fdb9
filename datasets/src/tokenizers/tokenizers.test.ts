import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { TOKENIZER_CATALOG, catalogTokenizer, uploadedTokenizer } from './catalog.ts'
import { TokenizerError } from './tokenizer-error.ts'

interface Fixtures {
  tokenizers: Record<string, Array<{ text: string, ids: number[] }>>
  uploaded: Record<string, { file: string, vocabSize: number, samples: Array<{ text: string, ids: number[], decoded: string }> }>
}
const testData = (file: string): URL => new URL(`../../test-data/${file}`, import.meta.url)
const fixtures = JSON.parse(readFileSync(testData('tokenizer-fixtures.json'), 'utf8')) as Fixtures

describe('catalogue tokenizers against the reference implementation', () => {
  for (const [name, samples] of Object.entries(fixtures.tokenizers)) {
    it(`${name} gives the reference implementation's ids for every sample and decodes them back`, () => {
      const tok = catalogTokenizer(name)
      expect(samples.length).toBeGreaterThan(10)
      for (const { text, ids } of samples) {
        expect(Array.from(tok.encode(text)), JSON.stringify(text.slice(0, 40))).toEqual(ids)
        expect(tok.decode(ids)).toBe(text)
      }
    })
  }

  it('every catalogue entry has known answers', () => {
    expect(Object.keys(fixtures.tokenizers).sort()).toEqual(TOKENIZER_CATALOG.map((e) => e.name).sort())
  })

  it('every catalogue entry loads with the vocabulary size it advertises', () => {
    for (const entry of TOKENIZER_CATALOG) expect(catalogTokenizer(entry.name).vocabSize).toBe(entry.vocabSize)
    expect(catalogTokenizer('gpt2').eosId).toBe(50256)
    expect(catalogTokenizer('gpt2-1k').eosId).toBe(1024)
    expect(catalogTokenizer('byte').eosId).toBeNull()
  })

  it('an unknown name is refused with the names it could have been', () => {
    expect(() => catalogTokenizer('llama9')).toThrow(/byte, gpt2-1k, gpt2/)
  })
})

describe('uploaded tokenizer.json', () => {
  const gpt2k = catalogTokenizer('gpt2-1k').huggingFaceFiles(512).get('tokenizer.json')
  const bytes = new TextEncoder().encode(JSON.stringify(gpt2k))

  it('is named by its sha256 and tokenizes as the same file from the catalogue does', () => {
    const tok = uploadedTokenizer(bytes)
    expect(tok.name).toMatch(/^sha256:[0-9a-f]{64}$/)
    const text = fixtures.tokenizers['gpt2-1k']![1]!
    expect(Array.from(tok.encode(text.text))).toEqual(text.ids)
    expect(tok.vocabSize).toBe(1025)
  })

  // Other kinds than GPT-2's byte-level BPE, built and run by Hugging Face's Rust tokenizers (the
  // fixture file says how): the path an upload takes gives Rust's ids and decodes as Rust does.
  for (const [kind, fixture] of Object.entries(fixtures.uploaded)) {
    it(`${kind}: gives Rust tokenizers' ids for every sample and decodes them as it does`, () => {
      const tok = uploadedTokenizer(new Uint8Array(readFileSync(testData(fixture.file))))
      expect(tok.vocabSize).toBe(fixture.vocabSize)
      expect(fixture.samples.length).toBeGreaterThan(10)
      for (const { text, ids, decoded } of fixture.samples) {
        expect(Array.from(tok.encode(text)), JSON.stringify(text.slice(0, 40))).toEqual(ids)
        expect(tok.decode(ids)).toBe(decoded)
      }
    })
  }

  it('takes the end-of-text token an uploaded tokenizer names, and none where it has none', () => {
    const eosOf = (kind: string): number | null => uploadedTokenizer(new Uint8Array(readFileSync(testData(fixtures.uploaded[kind]!.file)))).eosId
    expect(eosOf('unigram-kjv')).toBe(1230)
    // BERT-style: [SEP] ends a document, since a blank line encodes to nothing in WordPiece.
    expect(eosOf('wordpiece-kjv')).toBe(3)
  })

  it('refuses files that are not a tokenizer, with a reason', () => {
    const refused = (b: Uint8Array): TokenizerError => {
      try { uploadedTokenizer(b) } catch (err) { return err as TokenizerError }
      throw new Error('not refused')
    }
    expect(refused(new TextEncoder().encode('{"model": 3')).code).toBe('ERR_BAD_TOKENIZER')
    expect(refused(new Uint8Array([0xff, 0xfe, 0x00])).code).toBe('ERR_BAD_TOKENIZER')
    expect(refused(new TextEncoder().encode('{"model":{"type":"Magic","vocab":{}}}')).message).toMatch(/model\.type/)
    expect(refused(new TextEncoder().encode('{"model":{"type":"BPE","vocab":{"a":0}}}')).message).toMatch(/2 to/)
    const huge = { model: { type: 'WordLevel', vocab: { a: 0, b: 2 ** 24 }, unk_token: 'a' } }
    expect(refused(new TextEncoder().encode(JSON.stringify(huge))).message).toMatch(/ids/)
  })

  it('refuses a tokenizer nested deeper than any real one, however valid the rest (its unknown keys are written into every checkpoint folder)', () => {
    const real = JSON.parse(readFileSync(testData(fixtures.uploaded['unigram-kjv']!.file), 'utf8')) as Record<string, unknown>
    const withExtra = (extra: string): Uint8Array => new TextEncoder().encode(JSON.stringify(real).replace(/}$/, `,"extra":${extra}}`))
    expect(uploadedTokenizer(withExtra('[[[[1]]]]')).vocabSize).toBeGreaterThan(0)
    for (const depth of [100, 100_000]) {
      const err = (() => { try { uploadedTokenizer(withExtra('['.repeat(depth) + ']'.repeat(depth))) } catch (e) { return e as TokenizerError } throw new Error('not refused') })()
      expect(err.code).toBe('ERR_BAD_TOKENIZER')
      expect(err.message).toMatch(/nests (101|more than 10000) levels deep/)
    }
  })

  it('decode refuses ids outside the vocabulary', () => {
    expect(() => catalogTokenizer('gpt2-1k').decode([5, 1025])).toThrow(TokenizerError)
  })
})

describe('the piece-by-piece fast path', () => {
  it('gives the library\'s own ids on thousands of random texts (whitespace runs, contractions, scripts, emoji, special tokens)', async () => {
    const { Tokenizer } = await import('@huggingface/tokenizers')
    const alphabet = ['a', 'Z', 'é', 'ß', '日', '本', 'λ', 'ש', '7', '42', ' ', '  ', '\t', '\n', '\r\n', "'", "'s", "'ll", '!', '?!', '.', ',', '—', '🤖', '👩‍👧', '\u00a0', '<|endoftext|>', '<|', 'endoftext', '|>', '_', '$', '0x1F']
    let seed = 12345
    const next = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed }
    for (const name of ['gpt2', 'gpt2-1k']) {
      const ours = catalogTokenizer(name)
      const reference = new Tokenizer(ours.huggingFaceFiles(64).get('tokenizer.json')!, {})
      for (let i = 0; i < 1500; i++) {
        let text = ''
        const length = next() % 24
        for (let j = 0; j < length; j++) text += alphabet[next() % alphabet.length]
        const expected = text === '' ? [] : reference.encode(text, { add_special_tokens: false }).ids
        expect(Array.from(ours.encode(text)), JSON.stringify(text)).toEqual(expected)
      }
    }
  })
})
