import { test } from 'vitest'
import assert from 'node:assert/strict'
import { databaseForFile } from '../../../test/support/file-database.ts'
import { CoordinatorError } from '../errors.ts'
import { createOrganization, ensureOrganization, organizationNameProblem } from './organizations.ts'
import { nameKey } from './name-key.ts'

const database = databaseForFile()

async function refusedCode (call: Promise<unknown>): Promise<string> {
  try {
    await call
  } catch (err) {
    assert.ok(err instanceof CoordinatorError, String(err))
    return err.code
  }
  throw new Error('the call was allowed')
}

test('names people would read as a taken one are taken: case, spacing, compatibility forms and invisible characters', async () => {
  const hilltop = await createOrganization(database.db, '  Hilltop Lab ')
  assert.equal(hilltop.name, 'Hilltop Lab')
  // From the review's spoof.ts, plus full-width letters and a no-break space.
  for (const name of ['Hilltop  Lab', 'hilltop lab', 'HILLTOP LAB', 'Hilltop\u00a0Lab', 'Hi\u200dlltop Lab', '\uff28\uff49\uff4c\uff4c\uff54\uff4f\uff50 Lab', 'Hilltop\tLab']) {
    const code = await refusedCode(createOrganization(database.db, name))
    // A tab is a control character, refused before its key is looked at.
    assert.equal(code, name.includes('\t') ? 'ERR_INVALID_INPUT' : 'ERR_NAME_TAKEN', JSON.stringify(name))
  }
  assert.equal((await database.db.selectFrom('organizations').select('id').where('name_key', '=', 'hilltop lab').execute()).length, 1)
  // The operator's CLI finds the existing one, however it is typed.
  assert.equal((await ensureOrganization(database.db, 'HILLTOP  lab')).id, hilltop.id)
  assert.notEqual((await ensureOrganization(database.db, 'Valley Lab')).id, hilltop.id)
})

test('control, bidirectional and invisible characters are refused in a name; letters of every script, emoji joiners and direction marks pass', () => {
  for (const name of ['Hilltop Lab\u202e', 'Hilltop\u2066Lab', 'Hilltop\u0000Lab', 'Hilltop\u0085Lab', 'Hilltop Lab\u200b', 'Hilltop\u2060Lab', 'Hill\ufefftop', 'Hill\u00adtop', '\u3164', 'Lab\u{e0041}', '\ud800Lab']) {
    assert.ok(organizationNameProblem(name) !== undefined, JSON.stringify(name))
  }
  for (const name of ['Hilltop Lab', 'Лаборатория', '東京ラボ', 'مختبر\u200fالتلة', 'دانش\u200cگاه', '\u{1f469}\u200d\u{1f52c} Lab', '\u2764\ufe0f Lab']) {
    assert.equal(organizationNameProblem(name), undefined, JSON.stringify(name))
  }
  assert.match(organizationNameProblem('Hilltop Lab\u200b')!, /U\+200B/)
  assert.match(organizationNameProblem('x'.repeat(101))!, /1 to 100 characters/)
  assert.equal(nameKey('  Ｈｉｌｌｔｏｐ\u00a0\u00a0LAB\u200b '), 'hilltop lab')
})

test('a look-alike of a lab\'s name made by mixing scripts in a word is refused, naming the word and the scripts; a name in one script a word passes', async () => {
  assert.match(organizationNameProblem('H\u0456lltop Lab')!, /^organization name must not mix scripts within a word: "H\u0456lltop" mixes Latin and Cyrillic letters/)
  for (const name of ['Лаборатория AI', 'Ελληνικό Lab', 'ソニーAI研究所']) assert.equal(organizationNameProblem(name), undefined, name)
  const before = (await database.db.selectFrom('organizations').select('id').execute()).length
  await createOrganization(database.db, 'Mixed Script Lab')
  await assert.rejects(createOrganization(database.db, 'Mixed Script L\u0430b'), (err) => err instanceof CoordinatorError && err.code === 'ERR_INVALID_INPUT' && /"L\u0430b" mixes Latin and Cyrillic/.test(err.message))
  assert.equal((await database.db.selectFrom('organizations').select('id').execute()).length, before + 1, 'the look-alike was not created')
})

test('a row inserted without a key (a script, a test) gets one from the database, and its name is taken too', async () => {
  const row = await database.db.insertInto('organizations').values({ name: 'Raw  Inserted LAB' }).returning(['id', 'name_key']).executeTakeFirstOrThrow()
  assert.equal(row.name_key, nameKey('Raw  Inserted LAB'))
  assert.equal(await refusedCode(createOrganization(database.db, 'raw inserted lab')), 'ERR_NAME_TAKEN')
  assert.equal((await ensureOrganization(database.db, 'Raw Inserted Lab')).id, row.id)
})

test('whole words of other scripts that read as Latin ones are the Latin name: Cyrillic "Арех", Greek "ΑΡΕΧ" are "apex"; other letters are kept', () => {
  assert.equal(nameKey('\u0410\u0440\u0435\u0445 Lab'), 'apex lab')
  assert.equal(nameKey('\u0391\u03a1\u0395\u03a7 LAB'), 'apex lab')
  assert.equal(nameKey('\u13aa\u13e2\u13ac\u13c3'), 'apez', 'Cherokee capitals too')
  assert.equal(nameKey('Лаборатория'), nameKey('ЛАБОРАТОРИЯ'), 'case still folds within a script')
  assert.notEqual(nameKey('Лаборатория'), nameKey('Лабораторий'))
})
