/**
 * What two public names share when people would read them as the same name: compatibility forms
 * folded (full-width letters, ligatures, the no-break space), invisible characters dropped,
 * spacing collapsed, case ignored, and letters of other scripts that read as Latin ones (a
 * Cyrillic "р", a Greek "Κ") read as those. Organizations (`organizations.name_key`, unique) and
 * the nodes of one lab (`nodes.name_key`, unique per organization) are told apart by it, so
 * "Hilltop  Lab", "hilltop lab", "Hilltop Lab\u200b" are all the taken "Hilltop Lab", and
 * "Арех Lab" (a Cyrillic word: each word in one script, so mixed-script.ts lets it through)
 * is the taken "Apex Lab". The rule is the newest name-key migration's, which keyed the rows
 * already stored (migrations 2026-12-08-0001, 2026-12-10-0001, 2026-12-11-0001): one rule for
 * stored and new keys.
 */
export { nameKey } from '@barnraise/migrations'
