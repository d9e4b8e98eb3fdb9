import { useState } from 'react'
import type { ReactNode } from 'react'
import { keepPreviousData, useQuery } from '@tanstack/react-query'
import { useTRPC } from '../lib/trpc.ts'
import type { RouterOutputs } from '../lib/trpc.ts'
import { useCopy } from '../lib/use-copy.ts'
import { useMediaQuery, useNow } from '../lib/time.ts'
import { formatBytes, formatCount, formatLoss, plural } from '../lib/format.ts'
import { apiErrorMessage } from '../lib/errors.ts'
import { Badge } from './Badge.tsx'
import { CodeBlock, CommandBlock, CopyButton } from './CommandBlock.tsx'
import { RelativeTime } from './RelativeTime.tsx'
import { LoadingRows } from './States.tsx'
import { CheckIcon, CopyIcon, DownloadIcon } from './Icons.tsx'

type RunCheckpointList = RouterOutputs['runs']['checkpoints']
type Checkpoint = RunCheckpointList['checkpoints'][number]

/** A table row: one checkpoint, or consecutive pruned ones folded together. */
type Row = { kind: 'checkpoint', c: Checkpoint } | { kind: 'pruned', items: Checkpoint[] }

/** Newest first; runs of pruned checkpoints collapse into one row, so the kept ones stay in view. */
function tableRows (checkpoints: Checkpoint[]): Row[] {
  const rows: Row[] = []
  for (const c of checkpoints) {
    const last = rows.at(-1)
    if (c.status !== 'pruned') rows.push({ kind: 'checkpoint', c })
    else if (last?.kind === 'pruned') last.items.push(c)
    else rows.push({ kind: 'pruned', items: [c] })
  }
  return rows
}

function ordinal (n: number): string {
  const tens = n % 100
  return `${n}${tens >= 11 && tens <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`
}

/** What the run keeps, in words. */
function retentionText (keepEvery: number): string {
  return keepEvery === 1 ? 'This run keeps every checkpoint.' : `This run keeps round 0, every ${ordinal(keepEvery)} round and the latest; the others are deleted once the next round closes.`
}

/** Shell lines that download a checkpoint's files one by one into ./ckpt. */
function curlCommands (origin: string, c: Checkpoint): string {
  return ['mkdir -p ckpt', ...c.files.map((f) => `curl -fL -o ckpt/${f.name} ${origin}${f.url}`)].join('\n')
}

function snippets (origin: string, c: Checkpoint): { shell: string, python: string } {
  const shell = [
    `# the whole folder in one file; unpacks into ./${c.folderName}/`,
    `curl -fL ${origin}${c.tar?.url ?? ''} | tar -x`,
    '',
    '# or file by file into ./ckpt',
    curlCommands(origin, c)
  ].join('\n')
  const python = [
    '# after downloading the files into ./ckpt (see above):',
    'from transformers import AutoModelForCausalLM, AutoTokenizer',
    'model = AutoModelForCausalLM.from_pretrained("./ckpt"); tok = AutoTokenizer.from_pretrained("./ckpt")',
    '',
    '# e.g. continue a prompt',
    'ids = tok("In the beginning", return_tensors="pt").input_ids',
    'print(tok.decode(model.generate(ids, max_new_tokens=60, do_sample=True)[0]))'
  ].join('\n')
  return { shell, python }
}

/** A button that copies text and says so in its own words, not only with an icon. */
function CopyTextButton ({ text, label, copiedLabel, testId }: { text: string, label: string, copiedLabel: string, testId: string }): ReactNode {
  const { copied, copy } = useCopy(text)
  return (
    <button type='button' className='button button-secondary button-small' data-testid={testId} data-copied={copied ? 'true' : undefined} onClick={copy}>
      {copied ? <CheckIcon /> : <CopyIcon />}
      <span aria-live='polite'>{copied ? copiedLabel : label}</span>
    </button>
  )
}

function range (values: Array<string>): string {
  return values.length === 1 || values[0] === values.at(-1) ? values[0]! : `${values[0]}–${values.at(-1)}`
}

/** The documents a checkpoint trained on, as CSV and JSON; only runs on an uploaded dataset keep the index that answers it. */
function DocumentLinks ({ round, links, label }: { round: number, links: { csv: string, json: string }, label?: string }): ReactNode {
  return (
    <p className='checkpoint-documents small' data-testid='checkpoint-documents' data-round={round}>
      <span className='muted'>{label ?? (round === 0 ? 'Documents trained (none):' : 'Documents trained:')}</span>{' '}
      <a href={links.csv} download data-testid='checkpoint-documents-csv' title={`Every document checkpoint ${round} trained on, as CSV`}>CSV</a>
      <span aria-hidden='true'> · </span>
      <a href={links.json} data-testid='checkpoint-documents-json' title={`Every document checkpoint ${round} trained on, with its work units, as JSON`}>JSON</a>
    </p>
  )
}

function PrunedRow ({ items, keepEvery, now }: { items: Checkpoint[], keepEvery: number, now: number }): ReactNode {
  const oldestFirst = [...items].reverse()
  const rounds = range(oldestFirst.map((c) => String(c.round)))
  const losses = oldestFirst.filter((c) => c.valLoss !== null).map((c) => formatLoss(c.valLoss))
  return (
    <tr data-testid='checkpoint-pruned' data-rounds={oldestFirst.map((c) => c.round).join(',')} data-status='pruned' className='row-pruned'>
      <td className='cell-primary' data-label='Round'>
        <div className='checkpoint-round'>
          <span className='strong num'>{items.length === 1 ? `Round ${rounds}` : `Rounds ${rounds}`}</span>
          <Badge tone='neutral'>Pruned</Badge>
        </div>
      </td>
      <td data-label='Tokens' className='num num-col'>{range(oldestFirst.map((c) => formatCount(c.tokensSeen)))}</td>
      <td data-label='Val loss' className='num num-col'>{losses.length === 0 ? '—' : range(losses)}</td>
      <td data-label='Saved' className='nowrap'><RelativeTime iso={items[0]!.createdAt} now={now} /></td>
      <td data-label='Files' className='span-2'>
        <span className='muted small'>
          {items.length === 1 ? 'Weights deleted' : `Weights of ${plural(items.length, 'checkpoint')} deleted`} by retention (this run keeps round 0, every {ordinal(keepEvery)} round and the latest); {items[0]!.documents === null ? 'losses and ledger rows stay.' : 'losses, ledger rows and document lists stay.'}
        </span>
        {items.length === 1 && items[0]!.documents !== null && <DocumentLinks round={items[0]!.round} links={items[0]!.documents} />}
        {items.length > 1 && items[0]!.documents !== null && (
          // Folded rounds can be many: their lists stay one click away instead of widening the row.
          <details className='checkpoint-documents small' data-testid='pruned-documents'>
            <summary>Documents each of these trained on</summary>
            {oldestFirst.map((c) => c.documents !== null && <DocumentLinks key={c.round} round={c.round} links={c.documents} label={`Round ${c.round}:`} />)}
          </details>
        )}
      </td>
      <td data-label='Download' className='actions-cell' />
    </tr>
  )
}

function CheckpointRow ({ c, origin, chosen, onChoose, now }: { c: Checkpoint, origin: string, chosen: boolean, onChoose: () => void, now: number }): ReactNode {
  return (
    <tr data-testid='checkpoint-row' data-sha={c.sha256} data-round={c.round} data-status={c.status} className={chosen ? 'row-selected' : undefined}>
      <td className='cell-primary' data-label='Round'>
        <div className='checkpoint-round'>
          <span className='strong num'>{c.round === 0 ? 'Initial' : `Round ${c.round}`}</span>
          {c.latest && <Badge tone='success' data-testid='checkpoint-latest-badge'>Latest</Badge>}
          {c.status === 'missing' && <Badge tone='danger'>Weights missing</Badge>}
        </div>
        <div className='mono muted small sha'><span title={c.sha256}>{c.sha256.slice(0, 16)}…</span><CopyButton text={c.sha256} label={`checkpoint id ${c.sha256}`} /></div>
      </td>
      <td data-label='Tokens' className='num num-col'>{formatCount(c.tokensSeen)}</td>
      <td data-label='Val loss' className='num num-col'>{formatLoss(c.valLoss)}</td>
      <td data-label='Saved' className='nowrap'><RelativeTime iso={c.createdAt} now={now} /></td>
      <td data-label='Files' className='span-2'>
        {c.status === 'missing'
          ? <span className='danger-inline small'>The weights are missing from the coordinator’s blob store; ask its operator.</span>
          : (
            <ul className='file-links'>
              {c.files.map((f) => (
                <li key={f.name}>
                  <a href={f.url} download={f.name} data-testid='checkpoint-file' data-file={f.name} data-size={f.size} title={`Download ${f.name} (${f.size.toLocaleString()} bytes)`}>
                    <DownloadIcon />{f.name}
                  </a>
                  <span className='file-size' data-testid='checkpoint-file-size'>{formatBytes(f.size)}</span>
                </li>
              ))}
            </ul>
            )}
        {c.documents !== null && <DocumentLinks round={c.round} links={c.documents} />}
      </td>
      <td data-label='Download' className='actions-cell'>
        {c.tar !== null && (
          <div className='checkpoint-actions'>
            <a className='button button-small' href={c.tar.url} download={c.tar.name} data-testid='checkpoint-tar' data-size={c.tar.size}>
              <DownloadIcon />Download folder (.tar, {formatBytes(c.tar.size)})
            </a>
            <CopyTextButton text={curlCommands(origin, c)} label='Copy curl commands' copiedLabel='Curl commands copied' testId='checkpoint-copy-curl' />
            <button type='button' className='button button-ghost button-small' aria-pressed={chosen} onClick={onChoose} data-testid='checkpoint-show-code'>
              {chosen ? 'Loading code shown below' : 'Show loading code'}
            </button>
          </div>
        )}
      </td>
    </tr>
  )
}

/** The run page's checkpoints: the stable latest address, every checkpoint with file sizes and downloads, pruned ones marked. */
export function RunCheckpoints ({ runId }: { runId: string }): ReactNode {
  const trpc = useTRPC()
  // The newest page first; "show all" asks for as many as one listing gives (a long run's
  // full list is at data.allUrl, a page at a time).
  const [limit, setLimit] = useState<number | undefined>(undefined)
  const list = useQuery({ ...trpc.runs.checkpoints.queryOptions({ id: runId, limit }), refetchInterval: 15_000, placeholderData: keepPreviousData })
  const now = useNow(5_000)
  const [selected, setSelected] = useState<string | null>(null)
  const [showAll, setShowAll] = useState(false)
  const phone = useMediaQuery('(max-width: 760px)')
  const origin = window.location.origin
  const data = list.data
  const checkpoints = data?.checkpoints ?? []
  const available = checkpoints.filter((c) => c.status === 'available')
  const chosen = available.find((c) => c.sha256 === selected) ?? available[0]
  const latest = checkpoints.find((c) => c.latest)
  const rows = tableRows(checkpoints)
  const shown = showAll ? rows : rows.slice(0, phone ? 3 : 8)
  const pruned = data?.pruned ?? 0
  const total = data?.total ?? 0
  const showEverything = (): void => {
    setShowAll(true)
    if (data !== undefined && data.total > checkpoints.length) setLimit(Math.min(data.total, data.pageMax))
  }
  return (
    <section className='section' aria-labelledby='checkpoints-title' data-testid='checkpoints-section'>
      <div className='section-head'>
        <h2 id='checkpoints-title' className='section-title'>Checkpoints</h2>
        <span className='muted small'>Each is a Hugging Face folder with a model card; it loads in <code>transformers</code></span>
      </div>
      {list.isPending && <LoadingRows label='Loading checkpoints…' rows={2} />}
      {list.isError && data === undefined && <p className='field-error' role='alert'>{apiErrorMessage(list.error)}</p>}
      {data !== undefined && (
        <>
          <div className='card checkpoint-latest' data-testid='checkpoint-latest'>
            <div>
              <h3 className='subsection-title'>Always the newest checkpoint</h3>
              <p className='muted small'>
                This address follows the run: it serves {latest === undefined ? 'the newest checkpoint' : latest.round === 0 ? 'the initial checkpoint' : `round ${latest.round}`} now, and the next one as soon as a round closes.
                Each file also works on its own: <code>…/checkpoints/latest/config.json</code>.
              </p>
            </div>
            <CommandBlock command={`curl -fL ${origin}${data.latestTarUrl} | tar -x`} label='Download and unpack the newest checkpoint' wrap testId='latest-command' />
            <p className='muted small' data-testid='retention-note' data-keep-every={data.keepEvery}>
              {retentionText(data.keepEvery)}{pruned > 0 ? ` ${plural(pruned, 'checkpoint')} pruned so far.` : ''} Licence: <code data-testid='checkpoint-license'>{data.license}</code>.
            </p>
          </div>
          {checkpoints.length === 0
            ? <div className='card empty-inline'>No checkpoints yet.</div>
            : (
              <div className='card table-card'>
                <table className='table table-responsive table-grid' data-testid='checkpoints-table'>
                  <caption className='visually-hidden'>Checkpoints, newest first</caption>
                  <thead>
                    <tr>
                      <th scope='col'>Round</th>
                      <th scope='col' className='num-col'>Tokens</th>
                      <th scope='col' className='num-col'>Val loss</th>
                      <th scope='col'>Saved</th>
                      <th scope='col'>Files</th>
                      <th scope='col'>Download</th>
                    </tr>
                  </thead>
                  <tbody>
                    {shown.map((row) => row.kind === 'pruned'
                      ? <PrunedRow key={row.items[0]!.sha256} items={row.items} keepEvery={data.keepEvery} now={now} />
                      : <CheckpointRow key={row.c.sha256} c={row.c} origin={origin} chosen={chosen?.sha256 === row.c.sha256} onChoose={() => { setSelected(row.c.sha256) }} now={now} />)}
                  </tbody>
                </table>
              </div>
              )}
          {(rows.length > shown.length || (!showAll && total > checkpoints.length)) && <button type='button' className='button button-ghost show-more' onClick={showEverything}>Show all {plural(total, 'checkpoint')}</button>}
          {showAll && list.isPlaceholderData && <LoadingRows label='Loading older checkpoints…' rows={1} />}
          {showAll && !list.isPlaceholderData && total > checkpoints.length && (
            <p className='muted small' data-testid='checkpoints-older'>
              The newest {formatCount(checkpoints.length)} are listed here; all {formatCount(total)} are at <a href={data.allUrl}>{data.allUrl}</a>, {formatCount(data.pageMax)} at a time.
            </p>
          )}
          {chosen !== undefined && (
            <div className='snippets' data-testid='checkpoint-snippets' data-sha={chosen.sha256}>
              <p className='small'>Load {chosen.round === 0 ? 'the initial checkpoint' : `the round ${chosen.round} checkpoint`} in Python:</p>
              <CodeBlock language='shell' label='Download the checkpoint' code={snippets(origin, chosen).shell} testId='snippet-shell' />
              <CodeBlock language='python' label='Load it with transformers' code={snippets(origin, chosen).python} testId='snippet-python' />
            </div>
          )}
        </>
      )}
    </section>
  )
}
