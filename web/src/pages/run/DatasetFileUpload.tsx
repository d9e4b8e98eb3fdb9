// A dataset file of any size (plain text, JSONL, Parquet) with its tokenizer: uploaded in
// resumable pieces, then tokenized on the coordinator while this shows its progress.
import { useEffect, useState } from 'react'
import type { ReactNode } from 'react'
import { useMutation, useQuery } from '@tanstack/react-query'
import { useTRPC } from '../../lib/trpc.ts'
import type { RouterOutputs } from '../../lib/trpc.ts'
import { apiErrorMessage } from '../../lib/errors.ts'
import { formatBytes, formatCount, plural } from '../../lib/format.ts'
import { uploadPieces } from '../../lib/piece-upload.ts'
import type { TokenizedDataset } from '../../lib/spec-form.ts'
import { Field } from '../../components/Form.tsx'

type Format = 'text' | 'jsonl' | 'parquet'
type DatasetRow = RouterOutputs['datasets']['get']

const SAMPLE = 'In the beginning God created the heaven and the earth.'

/** The format a file name suggests. */
function formatOf (name: string): Format {
  const lower = name.toLowerCase()
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson') || lower.endsWith('.json')) return 'jsonl'
  if (lower.endsWith('.parquet')) return 'parquet'
  return 'text'
}

function Meter ({ label, done, total, testId }: { label: string, done: number, total: number, testId: string }): ReactNode {
  const pct = total > 0 ? Math.min(100, (done / total) * 100) : 0
  return (
    <div className='meter' data-testid={testId}>
      <div className='meter-head'><span className='meter-label'>{label}</span><span className='meter-value num small'>{formatBytes(done)} of {formatBytes(total)} · {pct.toFixed(0)}%</span></div>
      <div className='meter-bar' role='progressbar' aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(pct)}><span style={{ width: `${pct}%` }} /></div>
    </div>
  )
}

/** What the tokenizer does to a sample line: its tokens, each shown on its own. */
function TokenizerSample ({ tokenizer }: { tokenizer: string }): ReactNode {
  const trpc = useTRPC()
  const [text, setText] = useState(SAMPLE)
  const preview = useQuery(trpc.datasets.preview.queryOptions({ tokenizer, text }))
  return (
    <div className='tokenizer-sample' data-testid='tokenizer-sample'>
      <Field id='f-tokenizer-sample' label='Try the tokenizer' hint={preview.data !== undefined ? `${preview.data.ids.length} tokens for ${new TextEncoder().encode(text).length} bytes · vocabulary ${formatCount(preview.data.vocabSize)}` : undefined}>
        <input id='f-tokenizer-sample' className='input' value={text} maxLength={2000} onChange={(e) => { setText(e.target.value) }} />
      </Field>
      {preview.data !== undefined && (
        <p className='token-pieces' data-testid='token-pieces'>
          {preview.data.pieces.map((piece, i) => <span key={i} className='token-piece' title={`id ${preview.data.ids[i]}`}>{piece.replaceAll(' ', '·').replaceAll('\n', '↵')}</span>)}
        </p>
      )}
      {preview.error !== null && <p className='field-error'>{apiErrorMessage(preview.error)}</p>}
    </div>
  )
}

/** Upload, tokenizing and result; calls `onReady` once the dataset can be trained on. */
export function DatasetFileUpload ({ onReady, ready }: { onReady: (d: TokenizedDataset | null) => void, ready: TokenizedDataset | null }): ReactNode {
  const trpc = useTRPC()
  const tokenizers = useQuery(trpc.datasets.tokenizers.queryOptions())
  const create = useMutation(trpc.datasets.create.mutationOptions())
  const [file, setFile] = useState<File | null>(null)
  const [format, setFormat] = useState<Format>('jsonl')
  const [field, setField] = useState('text')
  const [tokenizer, setTokenizer] = useState('gpt2-1k')
  const [name, setName] = useState('')
  const [sent, setSent] = useState(0)
  const [datasetId, setDatasetId] = useState<string | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [sending, setSending] = useState(false)
  const status = useQuery({ ...trpc.datasets.get.queryOptions({ id: datasetId ?? '00000000-0000-0000-0000-000000000000' }), enabled: datasetId !== null && !sending, refetchInterval: (q) => (q.state.data as DatasetRow | undefined)?.status === 'tokenizing' ? 1000 : false })
  const row = status.data

  useEffect(() => {
    if (row?.status === 'ready' && ready?.id !== row.id) {
      const entry = tokenizers.data?.find((t) => t.name === row.tokenizer)
      onReady({ id: row.id, name: row.name, tokenizer: row.tokenizer, vocabSize: entry?.vocabSize ?? 0, trainTokens: row.trainTokens, validationTokens: row.validationTokens, documents: row.documents })
    }
  }, [row, ready, onReady, tokenizers.data])

  const pick = (f: File | null): void => {
    setFile(f)
    setDatasetId(null)
    setSent(0)
    setError(null)
    onReady(null)
    if (f !== null) {
      setFormat(formatOf(f.name))
      if (name.trim() === '') setName(f.name.replace(/\.[^.]+$/, ''))
    }
  }

  const start = async (): Promise<void> => {
    if (file === null) return
    setError(null)
    setSending(true)
    try {
      const created = await create.mutateAsync({ name: name.trim() !== '' ? name.trim() : file.name, format, field: format === 'text' ? null : field, tokenizer, fileName: file.name, fileBytes: file.size })
      setDatasetId(created.id)
      await uploadPieces({
        url: `/api/datasets/${created.id}/file`,
        file,
        from: 0,
        onProgress: setSent,
        received: async () => (await status.refetch()).data?.receivedBytes ?? 0
      })
    } catch (err) {
      setError(apiErrorMessage(err))
    } finally {
      setSending(false)
    }
  }

  const phase = sending ? 'uploading' : row?.status ?? 'idle'
  return (
    <div className='upload-box' data-testid='dataset-file-box'>
      <Field id='f-dataset-file' label='Dataset file' hint={file !== null ? `${file.name}, ${formatBytes(file.size)}` : 'JSONL, Parquet or plain text; any size (it is sent in pieces and resumes after a dropped connection)'} field='dataset'>
        <input id='f-dataset-file' type='file' accept='.jsonl,.ndjson,.json,.parquet,.txt,.md,text/plain' className='input-file' onChange={(e) => { pick(e.target.files?.[0] ?? null) }} data-testid='dataset-file' />
      </Field>
      <div className='field-grid'>
        <Field id='f-dataset-format' label='Format' hint={format === 'text' ? 'paragraphs (split at blank lines) are documents' : format === 'jsonl' ? 'one JSON object per line' : 'read one row group at a time'}>
          <select id='f-dataset-format' className='input' value={format} onChange={(e) => { setFormat(e.target.value as Format) }} data-testid='dataset-format'>
            <option value='jsonl'>JSON Lines</option>
            <option value='parquet'>Parquet</option>
            <option value='text'>Plain text</option>
          </select>
        </Field>
        {format !== 'text' && (
          <Field id='f-dataset-field' label={format === 'jsonl' ? 'Text field' : 'Text column'} hint='where each row keeps its text'>
            <input id='f-dataset-field' className='input' value={field} onChange={(e) => { setField(e.target.value) }} data-testid='dataset-field' />
          </Field>
        )}
        <Field id='f-dataset-tokenizer' label='Tokenizer' hint={tokenizers.data?.find((t) => t.name === tokenizer)?.description}>
          <select id='f-dataset-tokenizer' className='input' value={tokenizer} onChange={(e) => { setTokenizer(e.target.value); onReady(null) }} data-testid='dataset-tokenizer'>
            {(tokenizers.data ?? []).map((t) => <option key={t.name} value={t.name}>{t.label}</option>)}
          </select>
        </Field>
        <Field id='f-dataset-file-name' label='Dataset name'>
          <input id='f-dataset-file-name' className='input' value={name} onChange={(e) => { setName(e.target.value) }} />
        </Field>
      </div>
      <TokenizerSample tokenizer={tokenizer} />
      <div className='actions-row'>
        <button type='button' className='button button-secondary' disabled={file === null || sending || phase === 'tokenizing' || phase === 'ready'} onClick={() => { void start() }} data-testid='dataset-file-start'>
          {phase === 'uploading' ? 'Uploading…' : phase === 'tokenizing' ? 'Tokenizing…' : phase === 'ready' ? 'Ready' : 'Upload and tokenize'}
        </button>
      </div>
      {file !== null && (phase === 'uploading' || datasetId !== null) && <Meter label='Uploaded' done={sending ? sent : row?.receivedBytes ?? sent} total={file.size} testId='upload-meter' />}
      {row !== undefined && row.status !== 'uploading' && (
        <>
          <Meter label='Tokenized' done={row.readBytes} total={row.fileBytes} testId='tokenize-meter' />
          <p className='small muted' data-testid='dataset-counts'>
            {plural(row.documents, 'document')} · {formatCount(row.trainTokens)} training tokens · {formatCount(row.validationTokens)} held out · {plural(row.badRows, 'bad row')}
          </p>
        </>
      )}
      {row?.status === 'ready' && row.badRows > 0 && (
        <details className='small'>
          <summary>{row.badRows === 1 ? 'One row was' : `${formatCount(row.badRows)} rows were`} skipped</summary>
          <ul>{row.badRowExamples.map((e) => <li key={e.locator}><span className='mono'>{e.locator}</span>: {e.reason}</li>)}</ul>
        </details>
      )}
      {row?.status === 'ready' && <p className='success-text small' data-testid='dataset-ready'>Ready: {formatCount(row.trainTokens)} training tokens in {plural(row.shards, 'shard')}.</p>}
      {row?.status === 'failed' && <p className='field-error' data-testid='field-error' data-field='dataset'>{row.error}</p>}
      {error !== null && <p className='field-error' data-testid='field-error' data-field='dataset'>{error}</p>}
    </div>
  )
}
