// Look-alike names: "Hіlltop Lab" with a Cyrillic і reads as "Hilltop Lab" on the ledger, pledge
// statements and model cards. A word that mixes scripts is how such a name is made, and almost
// never how a real one is written (UTS #39's "highly restrictive" level, applied per word so
// "Лаборатория AI" still passes). Japanese, Korean and Chinese words that mix Han with their own
// scripts are allowed, as UTS #39 allows them. A whole word in a look-alike script ("Арех") is
// the name key's to catch (name-key.ts folds such letters).

/** Scripts told apart; a letter of none of them counts as one more script ("other"). */
const SCRIPTS: ReadonlyArray<[string, RegExp]> = [
  ['Latin', /\p{Script=Latin}/u], ['Greek', /\p{Script=Greek}/u], ['Cyrillic', /\p{Script=Cyrillic}/u],
  ['Armenian', /\p{Script=Armenian}/u], ['Hebrew', /\p{Script=Hebrew}/u], ['Arabic', /\p{Script=Arabic}/u],
  ['Georgian', /\p{Script=Georgian}/u], ['Cherokee', /\p{Script=Cherokee}/u], ['Devanagari', /\p{Script=Devanagari}/u],
  ['Thai', /\p{Script=Thai}/u], ['Han', /\p{Script=Han}/u], ['Hiragana', /\p{Script=Hiragana}/u],
  ['Katakana', /\p{Script=Katakana}/u], ['Hangul', /\p{Script=Hangul}/u], ['Bopomofo', /\p{Script=Bopomofo}/u]
]

/** Script sets a single word may use beyond one script: the East Asian writing systems (UTS #39). */
const ALLOWED_MIXES: ReadonlyArray<ReadonlySet<string>> = [
  new Set(['Latin', 'Han', 'Hiragana', 'Katakana']),
  new Set(['Latin', 'Han', 'Hangul']),
  new Set(['Latin', 'Han', 'Bopomofo'])
]

function scriptOf (letter: string): string {
  return SCRIPTS.find(([, re]) => re.test(letter))?.[0] ?? 'other'
}

/**
 * The first word of `text` whose letters come from scripts no language writes one word in
 * (say Latin and Cyrillic), with those scripts; undefined when there is none. Digits, marks,
 * punctuation and letters every script shares belong to no script here.
 */
export function mixedScriptWord (text: string): { word: string, scripts: string[] } | undefined {
  for (const word of text.split(/[^\p{L}\p{M}\p{N}]+/u)) {
    const scripts = new Set<string>()
    // Letters shared by scripts (Script=Common or Inherited, such as the kana length mark ー) count for none.
    for (const ch of word) if (/\p{L}/u.test(ch) && !/[\p{Script=Common}\p{Script=Inherited}]/u.test(ch)) scripts.add(scriptOf(ch))
    if (scripts.size <= 1) continue
    if (ALLOWED_MIXES.some((mix) => [...scripts].every((s) => mix.has(s)))) continue
    return { word, scripts: [...scripts] }
  }
  return undefined
}
