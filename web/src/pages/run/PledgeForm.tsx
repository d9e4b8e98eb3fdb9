import { useState } from 'react'
import type { FormEvent, ReactNode } from 'react'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useTRPC } from '../../lib/trpc.ts'
import { placeFieldErrors } from '../../lib/field-errors.ts'
import { formatHours, formatUsd } from '../../lib/format.ts'
import { Field, FormMessage, Segmented, fieldAria } from '../../components/Form.tsx'
import { UNIT_SHORT, UNIT_WORDS } from '../../lib/pledge-units.ts'
import type { PledgeKind } from '../../lib/pledge-units.ts'

/** A funder pledges money, GPU-hours or CPU core-hours to the run. */
export function PledgeForm ({ runId }: { runId: string }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const [kind, setKind] = useState<PledgeKind>('usd')
  const [amount, setAmount] = useState('')
  const [note, setNote] = useState('')
  const [error, setError] = useState<string | undefined>()
  const [noteError, setNoteError] = useState<string | undefined>()
  const [done, setDone] = useState<string | null>(null)
  const create = useMutation(trpc.pledges.create.mutationOptions())
  const amountHint = kind === 'usd' ? undefined : `Delivered by your organization’s ${kind === 'gpu_hours' ? 'GPU' : 'CPU-only'} machines; only their work after the pledge counts.`
  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault()
    setDone(null)
    setNoteError(undefined)
    const value = Number(amount)
    if (amount.trim() === '' || !Number.isFinite(value)) { setError('enter an amount'); return }
    if (value <= 0) { setError('the amount must be more than zero'); return }
    setError(undefined)
    try {
      await create.mutateAsync({ runId, kind, amount: value, ...(note.trim() !== '' ? { note: note.trim() } : {}) })
      setDone(`Thank you: ${kind === 'usd' ? formatUsd(value) : `${formatHours(value)} ${UNIT_WORDS[kind]}`} pledged.`)
      setAmount('')
      setNote('')
      await queryClient.invalidateQueries({ queryKey: [['pledges']] })
    } catch (err) {
      // A refused note is said at the note: under the amount it read as the amount's fault.
      const placed = placeFieldErrors(err, ['amount', 'note'])
      setNoteError(placed.fields.note)
      // A refusal of the pledge as a whole (no organization, a finished run) is said beside the amount, where the pledge is made.
      setError(placed.fields.amount ?? placed.message ?? undefined)
    }
  }
  return (
    <form className='form pledge-form' noValidate onSubmit={(e) => { void submit(e) }} data-testid='pledge-form'>
      <h3 className='subsection-title'>Pledge to this run</h3>
      <Segmented label='Pledge' value={kind} onChange={(k) => { setKind(k); setError(undefined) }} testId='pledge-kind' options={[{ value: 'usd', label: 'Money (USD)' }, { value: 'gpu_hours', label: 'GPU-hours' }, { value: 'cpu_core_hours', label: 'CPU core-hours' }]} />
      <Field id='pledge-amount' label={kind === 'usd' ? 'Amount in US dollars' : UNIT_WORDS[kind]} hint={amountHint} error={error} field='amount'>
        <div className='input-with-suffix'>
          <input id='pledge-amount' className='input num' type='number' min={0} step='any' inputMode='decimal' value={amount} onChange={(e) => { setAmount(e.target.value) }} {...fieldAria('pledge-amount', error, amountHint)} />
          <span className='input-suffix'>{kind === 'usd' ? 'USD' : UNIT_SHORT[kind]}</span>
        </div>
      </Field>
      <Field id='pledge-note' label={<>Note <span className='muted'>(optional, public)</span></>} error={noteError} field='note'>
        <input id='pledge-note' className='input' value={note} maxLength={500} onChange={(e) => { setNote(e.target.value) }} {...fieldAria('pledge-note', noteError, undefined)} />
      </Field>
      <button type='submit' className='button button-block' disabled={create.isPending} data-testid='pledge-submit'>{create.isPending ? 'Pledging…' : 'Pledge'}</button>
      {done !== null && <FormMessage tone='success' testId='pledge-done'>{done}</FormMessage>}
      <p className='muted small'>A pledge is a recorded commitment; no payment is taken here.</p>
    </form>
  )
}
