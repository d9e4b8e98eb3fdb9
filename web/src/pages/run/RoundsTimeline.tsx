import { useState } from 'react'
import type { ReactNode } from 'react'
import { useMediaQuery, useNow } from '../../lib/time.ts'
import { formatCount, formatDuration, formatLoss, formatScore, shortPeerId, capitalize, plural } from '../../lib/format.ts'
import { Badge } from '../../components/Badge.tsx'
import type { Round } from './run-types.ts'

const ROUND_TONES = { open: 'info', closed: 'success', abandoned: 'neutral' } as const

/**
 * The rounds the coordinator sends (its latest few hundred), newest first: who took part (with
 * each report's score), what was refused and why, tokens, losses and why it closed; `omitted`
 * older rounds it left out are counted under the table.
 */
export function RoundsTimeline ({ rounds, omitted = 0 }: { rounds: Round[], omitted?: number }): ReactNode {
  const [showAll, setShowAll] = useState(false)
  const now = useNow(1_000)
  const phone = useMediaQuery('(max-width: 760px)')
  const sorted = [...rounds].sort((a, b) => b.number - a.number)
  const shown = showAll ? sorted : sorted.slice(0, phone ? 4 : 12)
  return (
    <section className='section' aria-labelledby='rounds-title'>
      <div className='section-head'>
        <h2 id='rounds-title' className='section-title'>Rounds</h2>
        <span className='muted small'>{plural(rounds.length + omitted, 'round')}, newest first</span>
      </div>
      {rounds.length === 0
        ? <div className='card empty-inline' data-testid='rounds-empty'>No rounds yet. A round opens once the run is running and at least its minimum number of nodes is online.</div>
        : (
          <div className='card table-card'>
            <table className='table table-responsive table-grid' data-testid='rounds-table'>
              <caption className='visually-hidden'>Rounds of this run</caption>
              <thead>
                <tr>
                  <th scope='col'>Round</th>
                  <th scope='col'>Participants</th>
                  <th scope='col'>Refused reports</th>
                  <th scope='col' className='num-col'>Tokens</th>
                  <th scope='col' className='num-col'>Train loss</th>
                  <th scope='col' className='num-col'>Val loss</th>
                  <th scope='col'>Duration</th>
                  <th scope='col'>Closed because</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((r) => (
                  <tr key={r.id} data-testid='round-row' data-round={r.number} data-status={r.status}>
                    <td className='cell-primary' data-label='Round'>
                      <div className='round-head'>
                        <span className='strong num'>#{r.number}</span>
                        <Badge tone={ROUND_TONES[r.status as keyof typeof ROUND_TONES] ?? 'neutral'} pulse={r.status === 'open'}>{capitalize(r.status)}</Badge>
                      </div>
                    </td>
                    <td data-label='Participants' className='span-2'>
                      {r.participants.length === 0
                        ? <span className='muted'>none</span>
                        : (
                          <ul className='plain-list participant-list'>
                            {r.participants.map((p) => (
                              <li key={p.nodeId}>
                                <span>{p.name}</span> <span className={`muted small status-${p.status}`}>· {p.status}{p.tokens > 0 ? `, ${formatCount(p.tokens)} tok` : ''}</span>
                                {p.score !== null && <span className='muted small num' title='Loss this report removed on held-out data' data-testid='participant-score'> · score {formatScore(p.score)}</span>}
                              </li>
                            ))}
                          </ul>
                          )}
                    </td>
                    <td data-label='Refused reports' className={r.refusals.length > 0 ? 'span-2' : undefined} data-testid='round-refusals'>
                      {r.refusals.length === 0
                        ? <span className='muted'>none</span>
                        : (
                          <ul className='plain-list refusal-list'>
                            {r.refusals.map((x, i) => <li key={i}><span className='mono small' title={x.peerId}>{shortPeerId(x.peerId)}</span> <span className='danger-inline'>{x.reason}</span>{x.score !== null && <span className='muted small num'> (score {formatScore(x.score)})</span>}</li>)}
                          </ul>
                          )}
                    </td>
                    <td data-label='Tokens' className='num num-col'>{formatCount(r.tokens)}</td>
                    <td data-label='Train loss' className='num num-col'>{formatLoss(r.trainLoss)}</td>
                    <td data-label='Val loss' className='num num-col'>{formatLoss(r.valLoss)}</td>
                    <td data-label='Duration' className='nowrap'>
                      {r.durationSeconds !== null
                        ? formatDuration(r.durationSeconds)
                        : <span className='muted'>open {formatDuration(Math.max(0, (now - new Date(r.openedAt).getTime()) / 1000))}</span>}
                    </td>
                    <td data-label='Closed because'>{r.closeReason ?? <span className='muted'>—</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          )}
      {sorted.length > shown.length && (
        <button type='button' className='button button-ghost show-more' onClick={() => { setShowAll(true) }}>Show {omitted > 0 ? 'the latest' : 'all'} {sorted.length} rounds</button>
      )}
      {omitted > 0 && (showAll || sorted.length <= shown.length) && (
        <p className='muted small section-foot' data-testid='rounds-omitted'>{plural(omitted, 'older round')} not listed here; the run’s ledger has every report.</p>
      )}
    </section>
  )
}
