import type { RouterOutputs } from '../../lib/trpc.ts'

/** One run as the run page reads it. */
export type RunDetail = RouterOutputs['runs']['get']
export type Round = RunDetail['rounds'][number]
export type PledgeSummary = RouterOutputs['pledges']['forRun']
