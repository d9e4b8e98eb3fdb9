/** One page as `ledger.entries` answers it. */
export interface LedgerPageAnswer<E extends { seq: number }> {
  entries: E[]
  nextSeq: number
  done: boolean
}

/** Asks `ledger.entries` for the page after `afterSeq`. */
export type LedgerPageFetcher<E extends { seq: number }> = (afterSeq: number) => Promise<LedgerPageAnswer<E>>

/**
 * Every row after `afterSeq`, in chain order, read a page at a time until the coordinator says
 * `done`. A page that does not move past where it was asked from (a coordinator that misbehaves)
 * is an error rather than a loop.
 */
export async function readLedgerAfter<E extends { seq: number }> (fetchPage: LedgerPageFetcher<E>, afterSeq = 0): Promise<E[]> {
  const rows: E[] = []
  for (let after = afterSeq; ;) {
    const page = await fetchPage(after)
    for (const e of page.entries) rows.push(e)
    if (page.done) return rows
    if (page.nextSeq <= after) throw new Error(`the coordinator's ledger page after seq ${after} did not move on; reload the page`)
    after = page.nextSeq
  }
}

/**
 * `held` with the rows written since its last one: a ledger only grows, so a refresh asks only
 * for what follows the last seq it has (the whole ledger the first time). Returns `held` itself
 * when nothing is new, so a quiet refresh re-renders nothing.
 */
export async function withNewLedgerRows<E extends { seq: number }> (held: readonly E[], fetchPage: LedgerPageFetcher<E>): Promise<readonly E[]> {
  const fresh = await readLedgerAfter(fetchPage, held.at(-1)?.seq ?? 0)
  return fresh.length === 0 ? held : [...held, ...fresh]
}
