import type { ReactNode } from 'react'
import { formatCount, formatLoss, capitalize, plural } from '../../lib/format.ts'
import { Meter, Stat } from '../../components/Stat.tsx'
import type { RunDetail } from './run-types.ts'

/** The headline numbers: round, tokens, validation loss, nodes training. */
export function RunStats ({ run, activeNodes }: { run: RunDetail, activeNodes: number }): ReactNode {
  const s = run.summary
  const openRound = run.rounds.find((r) => r.status === 'open')
  const valPoints = run.checkpoints.filter((c) => c.valLoss !== null)
  const firstVal = valPoints[0]?.valLoss ?? null
  return (
    <div className='stats' aria-label='Progress'>
      <Stat
        label='Round'
        value={<span data-testid='stat-round'>{s.round.toLocaleString()}{s.roundsGoal !== null && <span className='muted'> / {s.roundsGoal.toLocaleString()}</span>}</span>}
        hint={openRound !== undefined ? `round ${openRound.number} open · ${plural(openRound.participants.length, 'node')}` : s.status === 'running' ? 'waiting for nodes' : capitalize(s.status)}
      />
      <Stat label='Tokens trained' value={<span data-testid='stat-tokens'>{formatCount(s.tokensSeen)}</span>} hint={s.tokenGoal !== null ? `of ${formatCount(s.tokenGoal)} target` : 'across all nodes'} />
      <Stat
        label='Validation loss'
        value={<span data-testid='stat-val-loss'>{formatLoss(s.latestValLoss)}</span>}
        hint={firstVal !== null && s.latestValLoss !== null && valPoints.length > 1 ? `from ${formatLoss(firstVal)} at the start` : 'held-out text, lower is better'}
      />
      <Stat label='Nodes training' value={activeNodes.toLocaleString()} hint={`min ${run.spec.minNodes}, max ${run.spec.maxNodes} per round`} />
    </div>
  )
}

/** Rounds and tokens against the run's goal. */
export function ProgressCard ({ run }: { run: RunDetail }): ReactNode {
  const s = run.summary
  const tokensPerRound = run.spec.recipe.innerSteps * run.spec.recipe.batchSize * run.spec.recipe.seqLen
  return (
    <section className='card section-card' aria-labelledby='progress-title'>
      <h2 id='progress-title' className='section-title'>Progress</h2>
      <div className='meters'>
        {s.roundsGoal !== null && <Meter label='Rounds' value={s.round} goal={s.roundsGoal} format={(n) => n.toLocaleString()} testId='rounds-meter' />}
        <Meter label='Tokens processed' value={s.tokensSeen} goal={s.tokenGoal} format={formatCount} unit='tokens' testId='tokens-meter' />
      </div>
      <p className='muted small'>Each node trains {formatCount(tokensPerRound)} tokens per round ({run.spec.recipe.innerSteps} steps × {run.spec.recipe.batchSize} × {run.spec.recipe.seqLen}).</p>
    </section>
  )
}
