import { test } from 'vitest'
import assert from 'node:assert/strict'
import { mixedScriptWord } from './mixed-script.ts'

test('a word mixing scripts (a look-alike letter) is found; names written in one script a word pass', () => {
  assert.deepEqual(mixedScriptWord('H\u0456lltop Lab'), { word: 'H\u0456lltop', scripts: ['Latin', 'Cyrillic'] }, 'a Cyrillic і in a Latin word')
  assert.deepEqual(mixedScriptWord('Open \u039cind'), { word: '\u039cind', scripts: ['Greek', 'Latin'] }, 'a Greek Μ')
  assert.deepEqual(mixedScriptWord('Lab-\u0430\u0432c')?.scripts, ['Cyrillic', 'Latin'], 'words split on punctuation')
  for (const name of ['Hilltop Lab', 'Лаборатория AI', 'Ελληνικό Lab', '東京大学 Lab', '東京のラボ', 'ソニーAI研究所', '서울대학교 AI', 'مختبر 42', 'École Polytechnique', 'Lab 2.0', 'x86-64 Lab', '']) {
    assert.equal(mixedScriptWord(name), undefined, name)
  }
})
