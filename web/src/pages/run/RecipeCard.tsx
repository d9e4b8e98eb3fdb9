import type { ReactNode } from 'react'
import { formatCodecs, formatCount, plural } from '../../lib/format.ts'
import type { RunDetail } from './run-types.ts'

/** The run's model, data and hyperparameters as its spec resolved them. */
export function RecipeCard ({ run, runId }: { run: RunDetail, runId: string }): ReactNode {
  const spec = run.spec
  const r = spec.recipe
  const model = 'preset' in spec.model ? `${spec.model.preset} preset` : 'custom config'
  const rows: Array<[string, string]> = [
    ['Model', `${model} · ${formatCount(spec.paramCount)} parameters`],
    ['Dataset', spec.dataset.source === 'demo-corpus' ? 'Demo corpus (King James Bible)' : spec.dataset.source === 'shards' ? `${plural(spec.dataset.train.length, 'uploaded shard')}` : `tokenized dataset · ${plural(spec.trainShards.length, 'shard')}`],
    ['Tokenizer', `${spec.tokenizer ?? 'byte'} · vocabulary ${spec.vocabSize.toLocaleString()}`],
    ['Inner steps × batch × seq', `${r.innerSteps} × ${r.batchSize} × ${r.seqLen}`],
    ['Inner AdamW', `lr ${r.innerLr}, warmup ${r.warmupSteps}, wd ${r.weightDecay}, β ${r.beta1}/${r.beta2}, clip ${r.gradClip}`],
    ['Outer Nesterov', `lr ${r.outerLr}, momentum ${r.outerMomentum}`],
    ['Codec', `${formatCodecs(spec.codec, spec.codecs)}${[spec.codec, ...(spec.codecs ?? [])].includes('topk') ? `; error feedback decay ${r.errorFeedbackDecay ?? 1}` : ''}`],
    ['Round update broadcast', spec.broadcast === 'sparse' ? 'sparse: a topk of each round’s mean, the coordinator keeping what it drops' : 'dense'],
    ['Defences', `${spec.defences?.aggregation ?? 'mean'}${spec.defences?.screening === true ? ', every report screened' : ', no screening'}${(spec.defences?.redundancy ?? 0) > 0 ? `, ${Math.round(100 * spec.defences!.redundancy)}% of units doubled` : ''}`],
    ['Stops after', spec.rounds !== undefined ? `${spec.rounds.toLocaleString()} rounds` : `${formatCount(spec.tokenTarget ?? 0)} tokens`],
    ['Nodes per round', `${spec.minNodes} to ${spec.maxNodes}`],
    ['Round deadline', `${spec.roundDeadlineSeconds} s`],
    ['Evaluation', `${spec.evalBatches} held-out batches`],
    ['Seed', String(spec.seed)]
  ]
  return (
    <section className='card section-card section' aria-labelledby='recipe-title'>
      <h2 id='recipe-title' className='section-title'>Recipe</h2>
      <dl className='summary-list'>
        {rows.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}
      </dl>
      {spec.documentIndex !== undefined && spec.documentIndex !== null && (
        <p className='small'>
          Every document trained is on record: each checkpoint above links the documents that went into it, and <a href={`/api/runs/${runId}/documents.csv`} data-testid='documents-csv'>documents.csv</a> · <a href={`/api/runs/${runId}/documents.json`}>documents.json</a> always answer for the latest.
        </p>
      )}
    </section>
  )
}
