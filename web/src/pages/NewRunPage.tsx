import { useMemo, useState } from 'react'
import type { ChangeEvent, FormEvent, ReactNode } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useTRPC } from '../lib/trpc.ts'
import type { RouterOutputs } from '../lib/trpc.ts'
import { apiErrorFields, apiErrorMessage } from '../lib/errors.ts'
import { ACTIVATION_FLOATS_PER_TOKEN_LAYER, BYTES_PER_PARAM, estimateNodeMemory } from '../lib/memory.ts'
import { formatBytes, formatCount, formatUsd } from '../lib/format.ts'
import { ADVANCED_RECIPE_FIELDS, RECIPE_FIELDS, SPEC_DEFAULTS, buildSpec, fieldErrorMap, fieldId, formField, initialForm, overlapWarning, smallerCodecs, validateSpec, withCodec, withSlowLinkCodec } from '../lib/spec-form.ts'
import type { CodecChoice, RecipeKey, SpecForm, TokenizedDataset, UploadedDataset } from '../lib/spec-form.ts'
import { DatasetFileUpload } from './run/DatasetFileUpload.tsx'
import { Link, navigate } from '../lib/router.tsx'
import { PageHeader } from '../components/PageHeader.tsx'
import { RequireRole } from '../components/RequireRole.tsx'
import { Field, FormMessage, fieldAria } from '../components/Form.tsx'
import { ErrorState, LoadingRows } from '../components/States.tsx'
import { MAX_DATASET_UPLOAD_BYTES } from '@barnraise/protocol/run-spec'

type Preset = RouterOutputs['runs']['presets'][number]

/** Most text one upload may carry: the server's own limit. */
const MAX_UPLOAD_BYTES = MAX_DATASET_UPLOAD_BYTES

const PRESET_BLURBS: Record<string, string> = {
  tiny: 'For smoke tests: trains in seconds on any CPU.',
  small: 'The demo model: a few minutes on a handful of laptops.',
  medium: 'For workstations and small GPUs.',
  large: 'For GPU donors with room to spare.'
}

function configNumber (config: Record<string, unknown>, key: string): string {
  const v = config[key]
  return typeof v === 'number' ? v.toLocaleString() : '—'
}

/** Reads one picked file as text (UTF-8), for `runs.uploadDataset`. */
async function readText (file: File): Promise<string> {
  return await new Promise((resolve, reject) => {
    const reader = new FileReader()
    reader.onload = () => { resolve(String(reader.result ?? '')) }
    reader.onerror = () => { reject(reader.error ?? new Error(`could not read ${file.name}`)) }
    reader.readAsText(file)
  })
}

function PresetCards ({ presets, selected, onSelect, recipe, error }: {
  presets: Preset[]
  selected: string
  onSelect: (name: string) => void
  recipe: { batchSize: number, seqLen: number }
  error?: string
}): ReactNode {
  return (
    <div className='field' data-field='model'>
      <div className='preset-grid' role='radiogroup' aria-label='Model size'>
        {presets.map((p) => {
          const memory = estimateNodeMemory(p.paramCount, p.config, recipe)
          const on = p.name === selected
          return (
            <label key={p.name} className={`preset-card${on ? ' preset-card-on' : ''}`} data-testid='preset-card' data-preset={p.name}>
              <input type='radio' name='preset' value={p.name} checked={on} onChange={() => { onSelect(p.name) }} />
              <span className='preset-name'>{p.name}</span>
              <span className='preset-params'>{formatCount(p.paramCount)} parameters</span>
              <span className='preset-shape muted small'>
                {configNumber(p.config, 'num_hidden_layers')} layers · hidden {configNumber(p.config, 'hidden_size')} · {configNumber(p.config, 'num_attention_heads')} heads
              </span>
              <span className='preset-memory' data-testid='preset-memory'>
                <span className='muted small'>Memory per node</span>
                <strong className='num'>≈ {formatBytes(memory.total)}</strong>
              </span>
              {PRESET_BLURBS[p.name] !== undefined && <span className='preset-blurb muted small'>{PRESET_BLURBS[p.name]}</span>}
            </label>
          )
        })}
      </div>
      {error !== undefined && <p className='field-error' data-testid='field-error' data-field='model'>{error}</p>}
    </div>
  )
}

function MemoryExplainer ({ preset, recipe }: { preset: Preset | undefined, recipe: { batchSize: number, seqLen: number } }): ReactNode {
  if (preset === undefined) return null
  const m = estimateNodeMemory(preset.paramCount, preset.config, recipe)
  return (
    <details className='explainer' data-testid='memory-explainer'>
      <summary>How we estimate memory per node</summary>
      <table className='kv-table'>
        <tbody>
          <tr><th scope='row'>Weights, gradients, AdamW m and v</th><td className='num'>{formatCount(preset.paramCount)} params × {BYTES_PER_PARAM} B = {formatBytes(m.state)}</td></tr>
          <tr><th scope='row'>Activations</th><td className='num'>{recipe.batchSize} × {recipe.seqLen} tokens × hidden {configNumber(preset.config, 'hidden_size')} × {configNumber(preset.config, 'num_hidden_layers')} layers × {ACTIVATION_FLOATS_PER_TOKEN_LAYER} floats × 4 B = {formatBytes(m.activations)}</td></tr>
          <tr><th scope='row'>Logits and their gradient</th><td className='num'>{recipe.batchSize} × {recipe.seqLen} × vocab {configNumber(preset.config, 'vocab_size')} × 2 × 4 B = {formatBytes(m.logits)}</td></tr>
          <tr><th scope='row'>Total</th><td className='num strong'>≈ {formatBytes(m.total)}</td></tr>
        </tbody>
      </table>
      <p className='muted small'>
        fp32 throughout, as the agent trains today. It is a floor: the runtime, the data loader and the
        pseudo-gradient being encoded add some, so leave headroom.
      </p>
    </details>
  )
}

function NumberInput ({ path, value, onChange, error, hint, label, step = '1', min, suffix }: {
  path: string
  value: string
  onChange: (value: string) => void
  error: string | undefined
  hint?: ReactNode
  label: ReactNode
  step?: string
  min?: number
  suffix?: string
}): ReactNode {
  const id = fieldId(path)
  return (
    <Field id={id} label={label} hint={hint} error={error} field={path}>
      <div className={suffix !== undefined ? 'input-with-suffix' : undefined}>
        <input
          id={id}
          name={path}
          className='input num'
          type='number'
          inputMode='decimal'
          step={step}
          min={min}
          value={value}
          onChange={(e) => { onChange(e.target.value) }}
          {...fieldAria(id, error, hint)}
        />
        {suffix !== undefined && <span className='input-suffix'>{suffix}</span>}
      </div>
    </Field>
  )
}

const SLOW_LINK_HINT = 'the coordinator measures each node’s report uploads and moves a node whose report would take over a tenth of its unit (nine tenths in overlapped runs) to the largest ticked codec that fits (the smallest when none does)'

/** Checkboxes for the codecs smaller than the run's own that a slow link may be moved to (spec `codecs`). */
function SlowLinkCodecs ({ codec, ticked, onToggle, error }: {
  codec: CodecChoice
  ticked: CodecChoice[]
  onToggle: (codec: CodecChoice, on: boolean) => void
  error: string | undefined
}): ReactNode {
  const id = fieldId('codecs')
  const smaller = smallerCodecs(codec)
  const hint = smaller.length === 0 ? 'none: topk is the smallest codec' : SLOW_LINK_HINT
  return (
    // A group of checkboxes has no one input for a <label>, so the group is named by its heading.
    <div className={`field${error !== undefined ? ' field-invalid' : ''}`} data-field='codecs' role='group' aria-labelledby={`${id}-label`} aria-describedby={error !== undefined ? `${id}-error` : `${id}-hint`}>
      <span className='field-label' id={`${id}-label`}>Nodes on slow links may send</span>
      {smaller.length > 0 && (
        <div className='check-inline'>
          {smaller.map((c) => (
            <label key={c} className='check-row'>
              <input id={`${id}-${c}`} type='checkbox' checked={ticked.includes(c)} onChange={(e) => { onToggle(c, e.target.checked) }} data-testid={`slow-link-codec-${c}`} />
              {c}
            </label>
          ))}
        </div>
      )}
      {error !== undefined && <p className='field-error' id={`${id}-error`} data-testid='field-error' data-field='codecs'>{error}</p>}
      {error === undefined && <p className='field-hint' id={`${id}-hint`}>{hint}</p>}
    </div>
  )
}

function Section ({ step, title, description, children }: { step: number, title: string, description?: ReactNode, children: ReactNode }): ReactNode {
  return (
    <section className='card form-section' aria-labelledby={`section-${step}`}>
      <header className='form-section-head'>
        <span className='form-step' aria-hidden='true'>{step}</span>
        <div>
          <h2 id={`section-${step}`}>{title}</h2>
          {description !== undefined && <p className='muted small'>{description}</p>}
        </div>
      </header>
      <div className='form-section-body'>{children}</div>
    </section>
  )
}

function LaunchForm ({ presets }: { presets: Preset[] }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const [form, setForm] = useState<SpecForm>(() => {
    const initial = initialForm()
    if (!presets.some((p) => p.name === initial.preset) && presets[0] !== undefined) initial.preset = presets[0].name
    return initial
  })
  const [files, setFiles] = useState<Array<{ name: string, size: number, text: string }>>([])
  const [datasetName, setDatasetName] = useState('')
  const [upload, setUpload] = useState<UploadedDataset | null>(null)
  const [tokenized, setTokenized] = useState<TokenizedDataset | null>(null)
  const [uploadError, setUploadError] = useState<string | null>(null)
  const [attempted, setAttempted] = useState(false)
  const [touched, setTouched] = useState<Set<string>>(new Set())
  const [serverErrors, setServerErrors] = useState<Map<string, string>>(new Map())
  const [formError, setFormError] = useState<string | null>(null)
  const uploadDataset = useMutation(trpc.runs.uploadDataset.mutationOptions())
  const create = useMutation(trpc.runs.create.mutationOptions())

  const spec = useMemo(() => buildSpec(form, upload, tokenized), [form, upload, tokenized])
  const clientErrors = useMemo(() => validateSpec(spec), [spec])
  const uploadBytes = files.reduce((sum, f) => sum + f.size, 0)
  const datasetError = form.datasetSource === 'upload' && upload === null
    ? (files.length === 0 ? 'choose one or more text files to upload (or use the demo corpus)' : uploadBytes > MAX_UPLOAD_BYTES ? `these files hold ${formatBytes(uploadBytes)}; one upload takes at most ${formatBytes(MAX_UPLOAD_BYTES)}` : undefined)
    : form.datasetSource === 'file' && tokenized === null ? 'upload a dataset file first (or use the demo corpus); the run may be launched while it tokenizes' : undefined
  const overlapNote = overlapWarning(form)

  /** What to show for a field: the server's verdict first, then ours once touched or submitted. */
  const errorFor = (path: string): string | undefined => {
    const server = serverErrors.get(path)
    if (server !== undefined) return server
    if (!attempted && !touched.has(path)) return undefined
    return clientErrors.get(path)
  }

  /** A field the organizer changed: its own errors show from now on, and the server's verdict on it is stale. */
  const markTouched = (path: string): void => {
    setTouched((t) => new Set(t).add(path))
    if (serverErrors.has(path)) setServerErrors((m) => { const c = new Map(m); c.delete(path); return c })
  }
  const update = (patch: Partial<SpecForm>, path?: string): void => {
    setForm((f) => ({ ...f, ...patch }))
    if (path !== undefined) markTouched(path)
  }
  const setRecipe = (key: RecipeKey, value: string): void => {
    setForm((f) => ({ ...f, recipe: { ...f.recipe, [key]: value } }))
    markTouched(`recipe.${key}`)
  }
  const setCodec = (codec: CodecChoice): void => {
    setForm((f) => withCodec(f, codec))
    markTouched('codec')
    markTouched('codecs')
  }
  const setSlowLinkCodec = (codec: CodecChoice, on: boolean): void => {
    setForm((f) => withSlowLinkCodec(f, codec, on))
    markTouched('codecs')
  }

  const recipeNumbers = {
    batchSize: Number(form.recipe.batchSize) > 0 ? Number(form.recipe.batchSize) : SPEC_DEFAULTS.recipe.batchSize,
    seqLen: Number(form.recipe.seqLen) > 0 ? Number(form.recipe.seqLen) : SPEC_DEFAULTS.recipe.seqLen
  }
  const innerSteps = Number(form.recipe.innerSteps) > 0 ? Number(form.recipe.innerSteps) : SPEC_DEFAULTS.recipe.innerSteps
  const tokensPerNodeRound = innerSteps * recipeNumbers.batchSize * recipeNumbers.seqLen
  // A preset's vocabulary follows the dataset's tokenizer: its embedding (and untied head) grow with it.
  const sizedPresets = useMemo(() => presets.map((p) => {
    if (form.datasetSource !== 'file' || tokenized === null || tokenized.vocabSize <= 0) return p
    const config = p.config as Record<string, unknown>
    const hidden = Number(config.hidden_size)
    const extra = (tokenized.vocabSize - Number(config.vocab_size)) * hidden * (config.tie_word_embeddings === true ? 1 : 2)
    return { ...p, config: { ...p.config, vocab_size: tokenized.vocabSize }, paramCount: p.paramCount + extra }
  }), [presets, form.datasetSource, tokenized])
  const preset = sizedPresets.find((p) => p.name === form.preset)
  // Counted so far while it tokenizes: no epochs to plan from that yet.
  const datasetTokens = form.datasetSource === 'file' ? (tokenized?.status === 'ready' ? tokenized.trainTokens : null) : form.datasetSource === 'upload' ? upload?.trainTokens ?? null : null
  const minNodes = Number(form.minNodes) > 0 ? Number(form.minNodes) : 1
  const plannedTokens = form.stopBy === 'tokens' ? Number(form.tokenTarget) : Number(form.rounds) * tokensPerNodeRound * minNodes
  const plannedEpochs = datasetTokens !== null && datasetTokens > 0 && Number.isFinite(plannedTokens) && plannedTokens > 0 ? plannedTokens / datasetTokens : null

  const onFiles = async (event: ChangeEvent<HTMLInputElement>): Promise<void> => {
    const picked = [...(event.target.files ?? [])]
    setUpload(null)
    setUploadError(null)
    try {
      const read = await Promise.all(picked.map(async (f) => ({ name: f.name, size: f.size, text: await readText(f) })))
      setFiles(read)
      if (datasetName.trim() === '' && read[0] !== undefined) setDatasetName(read[0].name.replace(/\.[^.]+$/, ''))
    } catch (err) {
      setUploadError(apiErrorMessage(err))
    }
  }

  const doUpload = async (): Promise<UploadedDataset | null> => {
    setUploadError(null)
    if (files.length === 0 || uploadBytes > MAX_UPLOAD_BYTES) return null
    try {
      const name = datasetName.trim() !== '' ? datasetName.trim() : (files[0]?.name ?? 'uploaded text')
      const result = await uploadDataset.mutateAsync({ name, files: files.map((f) => ({ name: f.name, text: f.text })) })
      const uploaded = { name: result.name, train: result.train, validation: result.validation, trainTokens: result.trainTokens, validationTokens: result.validationTokens }
      setUpload(uploaded)
      return uploaded
    } catch (err) {
      setUploadError(apiErrorMessage(err))
      return null
    }
  }

  const submit = async (start: boolean): Promise<void> => {
    setAttempted(true)
    setFormError(null)
    setServerErrors(new Map())
    let dataset = upload
    if (form.datasetSource === 'upload' && dataset === null) {
      if (datasetError !== undefined || clientErrors.size > 0) { focusFirstError(); return }
      dataset = await doUpload()
      if (dataset === null) return
    }
    if (form.datasetSource === 'file' && tokenized === null) { focusFirstError(); return }
    const finalSpec = buildSpec(form, dataset, tokenized)
    const errors = validateSpec(finalSpec)
    if (errors.size > 0) { focusFirstError(); return }
    try {
      const created = await create.mutateAsync({ spec: finalSpec, start })
      await queryClient.invalidateQueries({ queryKey: [['runs']] })
      navigate(`/runs/${created.id}`)
    } catch (err) {
      const fields = apiErrorFields(err)
      if (fields.length > 0) {
        setServerErrors(fieldErrorMap(fields))
        const unplaced = fields.filter((f) => !KNOWN_FIELDS.has(formField(f.field)))
        if (unplaced.length > 0) setFormError(unplaced.map((f) => `${f.field}: ${f.message}`).join('; '))
        focusFirstError()
      } else {
        setFormError(apiErrorMessage(err))
      }
    }
  }

  const busy = create.isPending || uploadDataset.isPending
  const errorCount = attempted ? new Set([...clientErrors.keys(), ...serverErrors.keys(), ...(datasetError !== undefined ? ['dataset'] : [])]).size : 0
  const stopError = errorFor(form.stopBy === 'rounds' ? 'rounds' : 'tokenTarget')

  return (
    <form className='launch' noValidate onSubmit={(e: FormEvent) => { e.preventDefault(); void submit(false) }} data-testid='launch-form'>
      <div className='launch-main'>
        {formError !== null && <FormMessage tone='danger' testId='form-error'>{formError}</FormMessage>}

        <Section step={1} title='Name it' description='Shown on the runs list, the ledger and every checkpoint.'>
          <Field id={fieldId('name')} label='Run name' error={errorFor('name')} field='name'>
            <input id={fieldId('name')} name='name' className='input' value={form.name} placeholder='e.g. Open Bible LM, round one' onChange={(e) => { update({ name: e.target.value }, 'name') }} {...fieldAria(fieldId('name'), errorFor('name'), undefined)} />
          </Field>
          <Field id={fieldId('description')} label={<>Description <span className='muted'>(optional)</span></>} error={errorFor('description')} field='description'>
            <textarea id={fieldId('description')} name='description' className='input' rows={2} value={form.description} placeholder='What this run is for, and who should join it' onChange={(e) => { update({ description: e.target.value }, 'description') }} />
          </Field>
        </Section>

        <Section step={2} title='Pick a model' description='Llama-style decoders whose vocabulary follows the tokenizer (bytes for the demo corpus). Memory per node updates with your batch size, sequence length and tokenizer.'>
          <PresetCards presets={sizedPresets} selected={form.preset} onSelect={(name) => { update({ preset: name }, 'model') }} recipe={recipeNumbers} error={errorFor('model')} />
          <MemoryExplainer preset={preset} recipe={recipeNumbers} />
        </Section>

        <Section step={3} title='Choose the data'>
          <div className='choice-list' role='radiogroup' aria-label='Dataset'>
            <label className={`choice${form.datasetSource === 'demo-corpus' ? ' choice-on' : ''}`} data-testid='dataset-demo'>
              <input type='radio' name='dataset' checked={form.datasetSource === 'demo-corpus'} onChange={() => { update({ datasetSource: 'demo-corpus' }, 'dataset') }} />
              <span>
                <span className='strong'>Demo corpus</span>
                <span className='muted small block'>The King James Bible shipped with Barnraise, about 4.3 million byte tokens; the last 2% is held out for validation.</span>
              </span>
            </label>
            <label className={`choice${form.datasetSource === 'upload' ? ' choice-on' : ''}`} data-testid='dataset-upload'>
              <input type='radio' name='dataset' checked={form.datasetSource === 'upload'} onChange={() => { update({ datasetSource: 'upload' }, 'dataset') }} />
              <span>
                <span className='strong'>Upload text files</span>
                <span className='muted small block'>Plain text, up to {formatBytes(MAX_UPLOAD_BYTES)} in all. The coordinator turns it into shards and holds some out for validation.</span>
              </span>
            </label>
            <label className={`choice${form.datasetSource === 'file' ? ' choice-on' : ''}`} data-testid='dataset-file-choice'>
              <input type='radio' name='dataset' checked={form.datasetSource === 'file'} onChange={() => { update({ datasetSource: 'file' }, 'dataset') }} />
              <span>
                <span className='strong'>Dataset file with a tokenizer</span>
                <span className='muted small block'>JSONL, Parquet or text of any size, tokenized with BPE (or bytes) on the coordinator. Every document trained is recorded, so you can later say what went into each checkpoint.</span>
              </span>
            </label>
          </div>
          {form.datasetSource === 'file' && <DatasetFileUpload ready={tokenized} onReady={setTokenized} />}
          {form.datasetSource === 'upload' && (
            <div className='upload-box'>
              <Field id='f-dataset-files' label='Text files' error={(attempted || files.length > 0) ? (serverErrors.get('dataset') ?? datasetError) : undefined} field='dataset' hint={files.length > 0 ? `${files.length} file${files.length === 1 ? '' : 's'}, ${formatBytes(uploadBytes)}` : '.txt, .md or any UTF-8 text'}>
                <input id='f-dataset-files' type='file' multiple accept='.txt,.md,.text,text/plain' className='input-file' onChange={(e) => { void onFiles(e) }} data-testid='dataset-files' />
              </Field>
              <Field id='f-dataset-name' label='Dataset name' field='dataset.name'>
                <input id='f-dataset-name' className='input' value={datasetName} onChange={(e) => { setDatasetName(e.target.value); setUpload(null) }} />
              </Field>
              <div className='actions-row'>
                <button type='button' className='button button-secondary' disabled={busy || files.length === 0 || uploadBytes > MAX_UPLOAD_BYTES || upload !== null} onClick={() => { void doUpload() }} data-testid='dataset-upload-button'>
                  {uploadDataset.isPending ? 'Uploading…' : upload !== null ? 'Uploaded' : 'Upload and shard'}
                </button>
                {upload !== null && (
                  <span className='success-text small' data-testid='dataset-uploaded'>
                    {upload.train.length} training shard{upload.train.length === 1 ? '' : 's'} · {formatCount(upload.trainTokens)} training tokens · {formatCount(upload.validationTokens)} held out
                  </span>
                )}
              </div>
              {uploadError !== null && <p className='field-error' data-testid='field-error' data-field='dataset'>{uploadError}</p>}
            </div>
          )}
          {/* The upload box shows its own; a dataset file's refusal (failed, removed, over quota) had no place and the form said nothing. */}
          {form.datasetSource !== 'upload' && serverErrors.has('dataset') && <p className='field-error' data-testid='field-error' data-field='dataset'>{serverErrors.get('dataset')}</p>}
        </Section>

        <Section step={4} title='Training recipe' description={<>Each round, every node takes H AdamW steps from the current checkpoint and reports what it learned; the coordinator merges the reports with Nesterov momentum (DiLoCo). Defaults are the schema’s.</>}>
          <div className='field-grid'>
            {RECIPE_FIELDS.map((f) => (
              <NumberInput key={f.key} path={`recipe.${f.key}`} label={f.label} hint={f.hint} step={f.step} value={form.recipe[f.key]} onChange={(v) => { setRecipe(f.key, v) }} error={errorFor(`recipe.${f.key}`)} />
            ))}
          </div>
          <p className='muted small recipe-note' data-testid='tokens-per-round'>
            Each node trains {innerSteps.toLocaleString()} × {recipeNumbers.batchSize.toLocaleString()} × {recipeNumbers.seqLen.toLocaleString()} = <strong className='num'>{tokensPerNodeRound.toLocaleString()} tokens</strong> per round.
          </p>
          <details className='explainer'>
            <summary>Advanced: optimizer, codec, evaluation, checkpoints, defences</summary>
            <div className='field-grid'>
              {ADVANCED_RECIPE_FIELDS.map((f) => (
                <NumberInput key={f.key} path={`recipe.${f.key}`} label={f.label} hint={f.hint} step={f.step} value={form.recipe[f.key]} onChange={(v) => { setRecipe(f.key, v) }} error={errorFor(`recipe.${f.key}`)} />
              ))}
              <Field id={fieldId('codec')} label='Pseudo-gradient codec' hint='int8 sends 4× less than fp32; topk 124× less, keeping what it drops on each node for the next round' field='codec' error={errorFor('codec')}>
                <select id={fieldId('codec')} className='input' value={form.codec} onChange={(e) => { setCodec(e.target.value as CodecChoice) }}>
                  <option value='int8'>int8 (blockwise absmax)</option>
                  <option value='fp16'>fp16</option>
                  <option value='fp32'>fp32</option>
                  <option value='topk'>topk (sparse, 4-bit, error feedback)</option>
                </select>
              </Field>
              <SlowLinkCodecs codec={form.codec} ticked={form.slowLinkCodecs} onToggle={setSlowLinkCodec} error={errorFor('codecs')} />
              <Field id={fieldId('overlap')} label='Round overlap' hint='overlapped: a node starts its next unit as soon as it reports, from the base one outer step old, so it never waits for the round to close; the stale outer step costs loss in short runs, so lower the outer learning rate (screened round by round; units may be doubled)' field='overlap' error={errorFor('overlap')}>
                <select id={fieldId('overlap')} className='input' value={form.overlap} onChange={(e) => { update({ overlap: e.target.value as SpecForm['overlap'] }, 'overlap') }} data-testid='overlap'>
                  <option value='none'>one at a time</option>
                  <option value='delayed'>overlapped (one-step-delayed outer update)</option>
                </select>
              </Field>
              {overlapNote !== null && <p className='banner banner-warning' role='status' data-testid='overlap-warning'>{overlapNote}</p>}
              <Field id={fieldId('broadcast')} label='Round update broadcast' hint='how each round’s mean reaches nodes that rebuild the next base themselves; sparse: a topk of it (0.032 bytes a parameter however many nodes, the coordinator keeping what it drops for the next round), at some cost in loss: raise the outer learning rate (3 in our measurements, as for topk reports)' field='broadcast' error={errorFor('broadcast')}>
                <select id={fieldId('broadcast')} className='input' value={form.broadcast} onChange={(e) => { update({ broadcast: e.target.value as SpecForm['broadcast'] }, 'broadcast') }} data-testid='broadcast'>
                  <option value='dense'>dense (int8, or the run’s codec)</option>
                  <option value='sparse'>sparse (topk with the coordinator’s error feedback)</option>
                </select>
              </Field>
              <Field id={fieldId('unitSizing')} label='Unit size' hint='by throughput: each node trains the run’s inner steps scaled by its measured speed (¼× to 4×), so fast GPUs do more and every unit finishes together' field='unitSizing' error={errorFor('unitSizing')}>
                <select id={fieldId('unitSizing')} className='input' value={form.unitSizing} onChange={(e) => { update({ unitSizing: e.target.value as SpecForm['unitSizing'] }, 'unitSizing') }} data-testid='unit-sizing'>
                  <option value='fixed'>the same for every node</option>
                  <option value='throughput'>by each node’s measured throughput</option>
                </select>
              </Field>
              <NumberInput path='evalBatches' label='Evaluation batches' hint='held-out batches per checkpoint' value={form.evalBatches} onChange={(v) => { update({ evalBatches: v }, 'evalBatches') }} error={errorFor('evalBatches')} />
              <NumberInput path='seed' label='Seed' hint='initial weights' value={form.seed} onChange={(v) => { update({ seed: v }, 'seed') }} error={errorFor('seed')} />
              <NumberInput path='retention.keepEvery' label='Keep every Nth checkpoint' hint='round 0, every Nth round and the latest keep their weights; the rest are deleted as the run goes (1 keeps all)' value={form.keepEvery} onChange={(v) => { update({ keepEvery: v }, 'retention.keepEvery') }} error={errorFor('retention.keepEvery')} />
              <Field id={fieldId('defences.aggregation')} label='Aggregation' hint='how a round’s reports become one update; all but the mean resist a few hostile nodes' field='defences.aggregation' error={errorFor('defences.aggregation')}>
                <select id={fieldId('defences.aggregation')} className='input' value={form.aggregation} onChange={(e) => { update({ aggregation: e.target.value as SpecForm['aggregation'] }, 'defences.aggregation') }} data-testid='aggregation'>
                  <option value='mean'>token-weighted mean (DiLoCo)</option>
                  <option value='trimmed-mean'>trimmed mean (20% from each end)</option>
                  <option value='median'>coordinate-wise median</option>
                  <option value='centered-clip'>centered clipping</option>
                </select>
              </Field>
              <Field id={fieldId('defences.screening')} label='Screening' hint='refuse near-zero, copied, replayed and harmful reports when they arrive' field='defences.screening'>
                <label className='check-row'>
                  <input id={fieldId('defences.screening')} type='checkbox' checked={form.screening} onChange={(e) => { update({ screening: e.target.checked }, 'defences.screening') }} data-testid='screening' />
                  Screen every report
                </label>
              </Field>
              <NumberInput path='defences.redundancy' label='Doubled units' hint='share of each round’s units also given to a second node; pairs on the same kind of device must agree or both earn nothing (every unit then starts its inner optimizer afresh)' suffix='%' min={0} value={form.redundancyPercent} onChange={(v) => { update({ redundancyPercent: v }, 'defences.redundancy') }} error={errorFor('defences.redundancy')} />
              <Field id={fieldId('license')} label='Licence of the weights' hint='a Hugging Face licence id, written into every model card' error={errorFor('license')} field='license'>
                <input id={fieldId('license')} name='license' className='input' value={form.license} list='license-ids' autoCapitalize='none' spellCheck={false} onChange={(e) => { update({ license: e.target.value }, 'license') }} {...fieldAria(fieldId('license'), errorFor('license'), 'a Hugging Face licence id, written into every model card')} />
                <datalist id='license-ids'>{['apache-2.0', 'mit', 'cc-by-4.0', 'cc-by-sa-4.0', 'openrail', 'other'].map((id) => <option key={id} value={id} />)}</datalist>
              </Field>
            </div>
          </details>
        </Section>

        <Section step={5} title='Nodes and when to stop'>
          <div className='field-grid'>
            <Field id='f-stopBy' label='Stop after' field='stopBy'>
              <select id='f-stopBy' className='input' value={form.stopBy} onChange={(e) => { update({ stopBy: e.target.value as SpecForm['stopBy'] }, form.stopBy === 'rounds' ? 'rounds' : 'tokenTarget') }}>
                <option value='rounds'>a number of rounds</option>
                <option value='tokens'>a number of tokens</option>
              </select>
            </Field>
            {form.stopBy === 'rounds'
              ? <NumberInput path='rounds' label='Rounds' hint='then the run completes' value={form.rounds} onChange={(v) => { update({ rounds: v }, 'rounds') }} error={stopError} />
              : <NumberInput path='tokenTarget' label='Token target' hint='tokens trained, across all nodes' value={form.tokenTarget} onChange={(v) => { update({ tokenTarget: v }, 'tokenTarget') }} error={stopError} />}
            <NumberInput path='minNodes' label='Minimum nodes' hint='a round opens once this many are online' value={form.minNodes} onChange={(v) => { update({ minNodes: v }, 'minNodes') }} error={errorFor('minNodes')} />
            <NumberInput path='maxNodes' label='Maximum nodes' hint='per round' value={form.maxNodes} onChange={(v) => { update({ maxNodes: v }, 'maxNodes') }} error={errorFor('maxNodes')} />
            <NumberInput path='roundDeadlineSeconds' label='Round deadline' hint='a round closes at this, with the reports that arrived' suffix='s' value={form.roundDeadlineSeconds} onChange={(v) => { update({ roundDeadlineSeconds: v }, 'roundDeadlineSeconds') }} error={errorFor('roundDeadlineSeconds')} />
          </div>
        </Section>

        <Section step={6} title='Goals' description='Optional. Shown on the run page against what funders pledge and what the ledger says was delivered.'>
          <div className='field-grid'>
            <NumberInput path='computeGoalGpuHours' label='Compute goal' hint='GPU-hours delivered by GPU machines (CPU-only machines count in CPU core-hours)' suffix='GPU-h' step='any' min={0} value={form.computeGoalGpuHours} onChange={(v) => { update({ computeGoalGpuHours: v }, 'computeGoalGpuHours') }} error={errorFor('computeGoalGpuHours')} />
            <NumberInput path='fundingGoalUsd' label='Funding goal' hint='in US dollars' suffix='USD' step='any' min={0} value={form.fundingGoalUsd} onChange={(v) => { update({ fundingGoalUsd: v }, 'fundingGoalUsd') }} error={errorFor('fundingGoalUsd')} />
          </div>
        </Section>
      </div>

      <aside className='launch-aside'>
        <div className='card launch-summary' data-testid='launch-summary'>
          <h2>Summary</h2>
          <dl className='summary-list'>
            <div><dt>Model</dt><dd>{form.preset} · {preset !== undefined ? `${formatCount(preset.paramCount)} params` : '—'}</dd></div>
            <div><dt>Memory per node</dt><dd className='num' data-testid='summary-memory'>{preset !== undefined ? `≈ ${formatBytes(estimateNodeMemory(preset.paramCount, preset.config, recipeNumbers).total)}` : '—'}</dd></div>
            <div><dt>Data</dt><dd>{form.datasetSource === 'demo-corpus' ? 'Demo corpus (KJV)' : form.datasetSource === 'file' ? (tokenized !== null ? `${tokenized.name} (${tokenized.status === 'tokenizing' ? 'still tokenizing: the run waits for it' : `${formatCount(tokenized.trainTokens)} tokens`}, ${tokenized.tokenizer.startsWith('sha256:') ? 'uploaded tokenizer.json' : tokenized.tokenizer})` : 'Dataset file: not uploaded yet') : upload !== null ? `${upload.name} (${formatCount(upload.trainTokens)} tokens)` : files.length > 0 ? `${files.length} file(s), not uploaded yet` : 'Upload: no files yet'}</dd></div>
            <div><dt>Planned epochs</dt><dd className='num' data-testid='summary-epochs'>{plannedEpochs !== null ? `≈ ${plannedEpochs < 0.01 ? plannedEpochs.toExponential(1) : plannedEpochs.toFixed(2)} (${formatCount(plannedTokens)} tokens${form.stopBy === 'rounds' ? ` at ${minNodes} node${minNodes === 1 ? '' : 's'}` : ''})` : '—'}</dd></div>
            <div><dt>Per node per round</dt><dd className='num'>{formatCount(tokensPerNodeRound)} tokens</dd></div>
            <div><dt>Stops after</dt><dd className='num'>{form.stopBy === 'rounds' ? `${form.rounds === '' ? '?' : form.rounds} rounds` : `${form.tokenTarget === '' ? '?' : formatCount(Number(form.tokenTarget))} tokens`}</dd></div>
            <div><dt>Goals</dt><dd className='num'>{form.computeGoalGpuHours !== '' ? `${form.computeGoalGpuHours} GPU-h` : 'no compute goal'} · {form.fundingGoalUsd !== '' && Number.isFinite(Number(form.fundingGoalUsd)) ? formatUsd(Number(form.fundingGoalUsd)) : 'no funding goal'}</dd></div>
          </dl>
          {errorCount > 0 && (
            <p className='field-error summary-errors' role='alert' data-testid='form-error-count'>
              {errorCount === 1 ? 'One field needs attention.' : `${errorCount} fields need attention.`} Nothing was created.
            </p>
          )}
          <div className='launch-buttons'>
            <button type='button' className='button button-block' disabled={busy} onClick={() => { void submit(true) }} data-testid='create-and-start'>
              {busy ? 'Working…' : 'Create and start'}
            </button>
            <button type='submit' className='button button-secondary button-block' disabled={busy} data-testid='create-run'>
              Create as draft
            </button>
          </div>
          <p className='muted small'>A draft waits until you start it from its page. Nodes pick up a running run within seconds.</p>
        </div>
      </aside>
    </form>
  )
}

/** Fields the form shows inline; any other server field error is listed above the form. */
const KNOWN_FIELDS = new Set(['name', 'description', 'model', 'dataset', 'codec', 'codecs', 'rounds', 'tokenTarget', 'minNodes', 'maxNodes', 'roundDeadlineSeconds', 'evalBatches', 'seed', 'computeGoalGpuHours', 'fundingGoalUsd', 'retention.keepEvery', 'license', 'defences.aggregation', 'defences.screening', 'defences.redundancy', 'overlap', 'broadcast', 'unitSizing',
  ...[...RECIPE_FIELDS, ...ADVANCED_RECIPE_FIELDS].map((f) => `recipe.${f.key}`)])

function focusFirstError (): void {
  requestAnimationFrame(() => {
    const first = document.querySelector<HTMLElement>('.field-invalid')
    if (first === null) return
    const details = first.closest('details')
    if (details !== null) details.open = true
    first.scrollIntoView({ block: 'center' })
    first.querySelector<HTMLElement>('input, select, textarea')?.focus({ preventScroll: true })
  })
}

export function NewRunPage (): ReactNode {
  const trpc = useTRPC()
  const presets = useQuery(trpc.runs.presets.queryOptions())
  return (
    <>
      <PageHeader
        title='Launch a run'
        description={<>Pick a model and data, set the recipe and goals. Organizers who script can create the same run from JSON: see <code>docs/run-spec.md</code>.</>}
        actions={<Link className='button button-ghost' to='/runs'>Cancel</Link>}
      />
      <RequireRole role='organizer' doing='launch a training run'>
        {() => (
          <>
            {presets.isPending && <LoadingRows label='Loading model presets…' />}
            {presets.isError && <ErrorState title='Can’t load the model presets' error={presets.error} onRetry={() => { void presets.refetch() }} retrying={presets.isFetching} />}
            {presets.data !== undefined && <LaunchForm presets={presets.data} />}
          </>
        )}
      </RequireRole>
    </>
  )
}
