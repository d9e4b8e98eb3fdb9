import type { createTRPCClient } from '@trpc/client'
import type { AppRouter } from '@barnraise/coordinator'
import type { LedgerEntry } from '@barnraise/protocol'

/**
 * A run's whole ledger through `ledger.entries`, a page at a time as the dashboard reads it:
 * pages are asked for after the last row held until one says `done`.
 */
export async function allLedgerEntries (client: ReturnType<typeof createTRPCClient<AppRouter>>, runId: string): Promise<LedgerEntry[]> {
  const rows: LedgerEntry[] = []
  for (let afterSeq = 0; ;) {
    const page = await client.ledger.entries.query({ runId, afterSeq })
    rows.push(...page.entries)
    if (page.done) return rows
    if (page.nextSeq <= afterSeq) throw new Error(`ledger.entries did not move past seq ${afterSeq}`)
    afterSeq = page.nextSeq
  }
}
