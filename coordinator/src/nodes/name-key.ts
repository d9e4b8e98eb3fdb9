/**
 * What two public names share when people would read them as the same name: compatibility forms
 * folded (full-width letters, ligatures, the no-break space), invisible characters dropped,
 * spacing collapsed, case ignored. Organizations (`organizations.name_key`, unique) and the nodes
 * of one lab (`nodes.name_key`, unique per organization) are told apart by it, so "Hilltop  Lab",
 * "hilltop lab" and "Hilltop Lab\u200b" are all the taken "Hilltop Lab", and "Trainer",
 * "trainer" and "train\u200ber" one node name. (The migrations that added those columns key
 * existing rows with their own frozen copy of this rule, as it was then.) Letters of other
 * scripts that merely look alike (a Cyrillic "Н") are not folded.
 */
export function nameKey (name: string): string {
  return name.normalize('NFKC').replace(/\p{Default_Ignorable_Code_Point}/gu, '').replace(/\s+/gu, ' ').trim().toLowerCase()
}
