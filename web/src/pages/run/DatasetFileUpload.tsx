// A dataset file of any size (plain text, JSONL, Parquet) with its tokenizer (built in, or a
// tokenizer.json uploaded here): uploaded in resumable pieces, carried on after a failure or a
// reload from what the coordinator kept, then tokenized there while this shows its progress.
import { useEffect, useRef, useState } from 'react'
import type { ReactNode } from 'react'
import { useMutation, useQuery } from '@tanstack/react-query'
import { useTRPC, useTRPCClient } from '../../lib/trpc.ts'
import type { RouterOutputs } from '../../lib/trpc.ts'
import { apiErrorCode, apiErrorMessage } from '../../lib/errors.ts'
import { formatBytes, formatCount, plural } from '../../lib/format.ts'
import { uploadPieces } from '../../lib/piece-upload.ts'
import { browserStore, fileKey, forgetUpload, recallUpload, rememberUpload, resumeChoice } from '../../lib/upload-resume.ts'
import { uploadTokenizerFile } from '../../lib/tokenizer-upload.ts'
import type { TokenizedDataset } from '../../lib/spec-form.ts'
import { Field } from '../../components/Form.tsx'
import { Meter } from '../../components/Meter.tsx'

type Format = 'text' | 'jsonl' | 'parquet'
type DatasetRow = RouterOutputs['datasets']['get']
/** A tokenizer.json uploaded here or named by a dataset being resumed; its vocabulary is unknown until asked. */
interface UploadedOption { name: string, vocabSize: number | null, fileName: string | null }

const SAMPLE = 'In the beginning God created the heaven and the earth.'

/** The format a file name suggests (for a tar of several files, the name before `.tar`: `shards.jsonl.tar`). */
function formatOf (name: string): Format {
  const lower = name.toLowerCase().replace(/\.tar$/, '')
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson') || lower.endsWith('.json')) return 'jsonl'
  if (lower.endsWith('.parquet')) return 'parquet'
  return 'text'
}

/** How long typing pauses before the sample is tokenized again. */
const PREVIEW_PAUSE_MS = 300

/** What the tokenizer does to a sample line: its tokens, each shown on its own. */
function TokenizerSample ({ tokenizer }: { tokenizer: string }): ReactNode {
  const trpc = useTRPC()
  const [text, setText] = useState(SAMPLE)
  // Asked once typing pauses: each preview of an uploaded tokenizer runs on the coordinator's
  // one preview worker, and a query per keystroke queued up behind it.
  const [asked, setAsked] = useState(SAMPLE)
  useEffect(() => {
    const timer = setTimeout(() => { setAsked(text) }, PREVIEW_PAUSE_MS)
    return () => { clearTimeout(timer) }
  }, [text])
  const preview = useQuery(trpc.datasets.preview.queryOptions({ tokenizer, text: asked }))
  return (
    <div className='tokenizer-sample' data-testid='tokenizer-sample'>
      <Field id='f-tokenizer-sample' label='Try the tokenizer' hint={preview.data !== undefined ? `${preview.data.ids.length} tokens for ${new TextEncoder().encode(asked).length} bytes · vocabulary ${formatCount(preview.data.vocabSize)}` : undefined}>
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

/** How an uploaded tokenizer reads in the select: its file when known, else the start of its hash. */
function uploadedLabel (t: UploadedOption): string {
  const what = t.fileName ?? `uploaded ${t.name.slice('sha256:'.length, 'sha256:'.length + 12)}…`
  return t.vocabSize === null ? what : `${what} (${t.vocabSize.toLocaleString()})`
}

/** Upload, tokenizing and result; calls `onReady` once the dataset can be trained on. */
export function DatasetFileUpload ({ onReady, ready }: { onReady: (d: TokenizedDataset | null) => void, ready: TokenizedDataset | null }): ReactNode {
  const trpc = useTRPC()
  const client = useTRPCClient()
  const tokenizers = useQuery(trpc.datasets.tokenizers.queryOptions())
  const create = useMutation(trpc.datasets.create.mutationOptions())
  const [file, setFile] = useState<File | null>(null)
  const [format, setFormat] = useState<Format>('jsonl')
  const [field, setField] = useState('text')
  const [tokenizer, setTokenizer] = useState('gpt2-1k')
  const [uploaded, setUploaded] = useState<UploadedOption[]>([])
  const [tokenizerError, setTokenizerError] = useState<string | null>(null)
  const [tokenizerBusy, setTokenizerBusy] = useState(false)
  const [name, setName] = useState('')
  const [sent, setSent] = useState(0)
  const [datasetId, setDatasetId] = useState<string | null>(null)
  /** the dataset an earlier attempt with this file made (this page or before a reload), as the server last described it */
  const [earlier, setEarlier] = useState<DatasetRow | null>(null)
  const [error, setError] = useState<string | null>(null)
  const [sending, setSending] = useState(false)
  const picked = useRef<File | null>(null)
  const status = useQuery({ ...trpc.datasets.get.queryOptions({ id: datasetId ?? '00000000-0000-0000-0000-000000000000' }), enabled: datasetId !== null && !sending, refetchInterval: (q) => (q.state.data as DatasetRow | undefined)?.status === 'tokenizing' ? 1000 : false })
  const row = datasetId !== null ? status.data : undefined
  const knownVocab = (tokenizerName: string): number | null =>
    tokenizers.data?.find((t) => t.name === tokenizerName)?.vocabSize ?? uploaded.find((t) => t.name === tokenizerName)?.vocabSize ?? null
  // A resumed dataset may name an uploaded tokenizer this page has not seen: ask its vocabulary.
  // Once the file is all on the coordinator a run can be launched: it waits for the tokenizing.
  const launchable = row?.status === 'tokenizing' || row?.status === 'ready'
  const vocab = useQuery({ ...trpc.datasets.preview.queryOptions({ tokenizer: row?.tokenizer ?? 'byte', text: '' }), enabled: launchable && knownVocab(row!.tokenizer) === null })

  useEffect(() => {
    if (row === undefined || (row.status !== 'tokenizing' && row.status !== 'ready')) return
    if (ready?.id === row.id && ready.status === row.status && ready.trainTokens === row.trainTokens) return
    const vocabSize = knownVocab(row.tokenizer) ?? vocab.data?.vocabSize
    if (vocabSize === undefined) return
    onReady({ id: row.id, name: row.name, tokenizer: row.tokenizer, vocabSize, trainTokens: row.trainTokens, validationTokens: row.validationTokens, documents: row.documents, status: row.status })
  }, [row, ready, onReady, tokenizers.data, uploaded, vocab.data])

  const wanted = file === null ? null : { fileName: file.name, fileBytes: file.size, format, field: format === 'text' ? null : field, tokenizer }
  const known = row ?? earlier
  const choice = wanted === null ? { kind: 'new' as const } : resumeChoice(known ?? null, wanted)

  /** A setting changed: the dataset shown no longer is the one these settings would make. */
  const unsettle = (): void => {
    setDatasetId(null)
    setSent(0)
    onReady(null)
  }

  /** Offers `view`'s tokenizer in the select when it is an uploaded one this page does not list. */
  const offerTokenizer = (tokenizerName: string): void => {
    if (!tokenizerName.startsWith('sha256:')) return
    setUploaded((list) => list.some((t) => t.name === tokenizerName) ? list : [...list, { name: tokenizerName, vocabSize: null, fileName: null }])
  }

  /**
   * Asks the server about the dataset this browser last sent `f` to (or `inPage`, the one this
   * page made for it, where storage keeps nothing); null when there is none worth carrying on.
   */
  const lookUp = async (f: File, inPage: string | null = null): Promise<DatasetRow | null> => {
    const store = browserStore()
    const id = recallUpload(store, fileKey(f)) ?? inPage
    if (id === null) return null
    let view: DatasetRow
    try {
      view = await client.datasets.get.query({ id })
    } catch (err) {
      // Gone, or another account's: forget it. Unreachable: keep it for the next try.
      if (apiErrorCode(err) === 'NOT_FOUND') { forgetUpload(store, fileKey(f)); return null }
      throw err
    }
    if (view.status === 'failed' || view.fileName !== f.name || view.fileBytes !== f.size) { forgetUpload(store, fileKey(f)); return null }
    return view
  }

  const pick = (f: File | null): void => {
    picked.current = f
    setFile(f)
    setDatasetId(null)
    setEarlier(null)
    setSent(0)
    setError(null)
    onReady(null)
    if (f === null) return
    setFormat(formatOf(f.name))
    if (name.trim() === '') setName(f.name.replace(/\.[^.]+$/, ''))
    void lookUp(f).then((view) => {
      if (view === null || picked.current !== f) return
      // Carry on with what the earlier attempt announced, so its bytes are read the same way.
      setEarlier(view)
      setFormat(view.format)
      setField(view.field ?? 'text')
      offerTokenizer(view.tokenizer)
      setTokenizer(view.tokenizer)
      setName(view.name)
      if (view.status !== 'uploading') setDatasetId(view.id)
    }).catch(() => {
      // Unreachable now; "Upload" asks again.
    })
  }

  const pickTokenizerFile = async (input: HTMLInputElement): Promise<void> => {
    const f = input.files?.[0]
    if (f === undefined) return
    setTokenizerError(null)
    setTokenizerBusy(true)
    try {
      const t = await uploadTokenizerFile(f)
      setUploaded((list) => [...list.filter((x) => x.name !== t.name), { name: t.name, vocabSize: t.vocabSize, fileName: t.fileName }])
      setTokenizer(t.name)
      unsettle()
    } catch (err) {
      setTokenizerError(err instanceof Error ? err.message : String(err))
    } finally {
      setTokenizerBusy(false)
      input.value = ''
    }
  }

  const start = async (): Promise<void> => {
    if (file === null || wanted === null) return
    setError(null)
    setSending(true)
    const store = browserStore()
    const key = fileKey(file)
    try {
      // Ask the server afresh: the last attempt, or another tab, may have moved the upload on.
      const current = await lookUp(file, datasetId)
      if (current !== null) setEarlier(current)
      const next = resumeChoice(current, wanted)
      if (next.kind === 'follow') { setDatasetId(current!.id); return }
      let id: string
      let from = 0
      if (next.kind === 'resume') {
        id = current!.id
        from = next.from
      } else {
        const created = await create.mutateAsync({ name: name.trim() !== '' ? name.trim() : file.name, format, field: format === 'text' ? null : field, tokenizer, fileName: file.name, fileBytes: file.size })
        id = created.id
        rememberUpload(store, key, id)
      }
      setDatasetId(id)
      setSent(from)
      await uploadPieces({
        url: `/api/datasets/${id}/file`,
        file,
        from,
        onProgress: setSent,
        received: async () => (await client.datasets.get.query({ id })).receivedBytes
      })
    } catch (err) {
      setError(apiErrorMessage(err))
      // Where the server stands now, for the note and the button ("Resume upload").
      const made = datasetId ?? recallUpload(store, key)
      void lookUp(file, made).then((view) => { if (view !== null && picked.current === file) setEarlier(view) }).catch(() => {})
    } finally {
      setSending(false)
    }
  }

  const uploadedOption = uploaded.find((t) => t.name === tokenizer)
  const tokenizerHint = uploadedOption !== undefined
    ? `Your tokenizer.json, stored as ${tokenizer.slice(0, 19)}…${uploadedOption.vocabSize !== null ? `; vocabulary ${uploadedOption.vocabSize.toLocaleString()}` : ''}`
    : tokenizers.data?.find((t) => t.name === tokenizer)?.description
  // A dataset still 'uploading' on the server while nothing is being sent has stopped: the button offers to carry on.
  const phase = sending ? 'sending' : row?.status === 'uploading' ? 'idle' : row?.status ?? 'idle'
  const resumeFrom = choice.kind === 'resume' ? choice.from : null
  return (
    <div className='upload-box' data-testid='dataset-file-box'>
      <Field id='f-dataset-file' label='Dataset file' hint={file !== null ? `${file.name}, ${formatBytes(file.size)}` : 'JSONL, Parquet or plain text, or a .tar of several such files in one format; any size (it is sent in pieces; an interrupted upload carries on when you upload the same file again)'} field='dataset'>
        <input id='f-dataset-file' type='file' accept='.jsonl,.ndjson,.json,.parquet,.txt,.md,.tar,text/plain,application/x-tar' className='input-file' onChange={(e) => { pick(e.target.files?.[0] ?? null) }} data-testid='dataset-file' />
      </Field>
      <div className='field-grid'>
        <Field id='f-dataset-format' label='Format' hint={format === 'text' ? 'paragraphs (split at blank lines) are documents' : format === 'jsonl' ? 'one JSON object per line' : 'read one row group at a time'}>
          <select id='f-dataset-format' className='input' value={format} onChange={(e) => { setFormat(e.target.value as Format); unsettle() }} data-testid='dataset-format'>
            <option value='jsonl'>JSON Lines</option>
            <option value='parquet'>Parquet</option>
            <option value='text'>Plain text</option>
          </select>
        </Field>
        {format !== 'text' && (
          <Field id='f-dataset-field' label={format === 'jsonl' ? 'Text field' : 'Text column'} hint='where each row keeps its text'>
            <input id='f-dataset-field' className='input' value={field} onChange={(e) => { setField(e.target.value); unsettle() }} data-testid='dataset-field' />
          </Field>
        )}
        <Field id='f-dataset-tokenizer' label='Tokenizer' hint={tokenizerHint}>
          <select id='f-dataset-tokenizer' className='input' value={tokenizer} onChange={(e) => { setTokenizer(e.target.value); setTokenizerError(null); unsettle() }} data-testid='dataset-tokenizer'>
            {(tokenizers.data ?? []).map((t) => <option key={t.name} value={t.name}>{t.label}</option>)}
            {uploaded.map((t) => <option key={t.name} value={t.name}>{uploadedLabel(t)}</option>)}
          </select>
        </Field>
        <Field id='f-dataset-tokenizer-file' label='Or upload a tokenizer.json' field='tokenizer' error={tokenizerError ?? undefined} hint={tokenizerBusy ? 'Checking it on the coordinator…' : 'A Hugging Face tokenizer.json (BPE, WordPiece, Unigram or WordLevel), up to 32 MiB; once checked it is chosen above'}>
          <input id='f-dataset-tokenizer-file' type='file' accept='.json,application/json' className='input-file' disabled={tokenizerBusy || sending} onChange={(e) => { void pickTokenizerFile(e.currentTarget) }} data-testid='tokenizer-file' />
        </Field>
        <Field id='f-dataset-file-name' label='Dataset name'>
          <input id='f-dataset-file-name' className='input' value={name} onChange={(e) => { setName(e.target.value) }} />
        </Field>
      </div>
      <TokenizerSample tokenizer={tokenizer} />
      {!sending && known !== undefined && known !== null && known.status === 'uploading' && file !== null && (
        <p className='small' data-testid='upload-resume-note' data-kind={choice.kind} data-received={known.receivedBytes}>
          {resumeFrom !== null
            ? `The coordinator kept ${formatBytes(resumeFrom)} of ${formatBytes(file.size)} from an earlier upload of this file; uploading again sends only the rest.`
            : `An earlier upload of this file (${formatBytes(known.receivedBytes)} kept) was announced with other settings (${known.format}${known.field !== null ? `, "${known.field}"` : ''}, ${known.tokenizer.startsWith('sha256:') ? 'an uploaded tokenizer' : known.tokenizer}); with these, the upload starts again from the first byte.`}
        </p>
      )}
      {earlier !== null && earlier.status !== 'uploading' && datasetId === earlier.id && (
        <p className='small' data-testid='upload-resume-note' data-kind='follow'>
          This file was already uploaded with these settings, as the dataset “{earlier.name}”: it is shown below rather than sent again.
        </p>
      )}
      <div className='actions-row'>
        <button type='button' className='button button-secondary' disabled={file === null || sending || tokenizerBusy || phase === 'tokenizing' || phase === 'ready'} onClick={() => { void start() }} data-testid='dataset-file-start'>
          {phase === 'sending' ? 'Uploading…' : phase === 'tokenizing' ? 'Tokenizing…' : phase === 'ready' ? 'Ready' : resumeFrom !== null ? 'Resume upload' : choice.kind === 'follow' ? 'Show its progress' : 'Upload and tokenize'}
        </button>
      </div>
      {file !== null && (sending || datasetId !== null || resumeFrom !== null) && <Meter label='Uploaded' done={sending ? sent : row?.receivedBytes ?? resumeFrom ?? sent} total={file.size} testId='upload-meter' />}
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
