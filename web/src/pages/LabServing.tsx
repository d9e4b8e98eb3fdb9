import { useEffect, useState } from 'react'
import type { FormEvent, ReactNode } from 'react'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useTRPC } from '../lib/trpc.ts'
import { apiErrorMessage } from '../lib/errors.ts'
import { ErrorState, LoadingRows } from '../components/States.tsx'
import { FormMessage } from '../components/Form.tsx'

type Serves = 'all' | 'chosen'

/** Toggles one id in a set kept as an array (React state stays a plain value). */
function toggled (ids: string[], id: string, on: boolean): string[] {
  return on ? [...new Set([...ids, id])] : ids.filter((x) => x !== id)
}

/** The lab's say over what its machines train: every run here, or only the runs and organizers it picks. */
export function LabServing ({ organizationName }: { organizationName: string }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const serving = useQuery(trpc.labs.serving.queryOptions())
  const save = useMutation(trpc.labs.setServing.mutationOptions())
  const [serves, setServes] = useState<Serves>('all')
  const [runIds, setRunIds] = useState<string[]>([])
  const [organizerIds, setOrganizerIds] = useState<string[]>([])
  const [message, setMessage] = useState<{ tone: 'success' | 'danger', text: string } | null>(null)
  const choices = serving.data?.choices
  useEffect(() => {
    if (choices === undefined) return
    setServes(choices.serves)
    setRunIds(choices.runs.map((r) => r.id))
    setOrganizerIds(choices.organizers.map((o) => o.id))
  }, [choices])

  if (serving.isPending) return <LoadingRows label='Loading which runs your machines train…' rows={2} />
  if (serving.isError) return <ErrorState title='Can’t load which runs your machines train' error={serving.error} onRetry={() => { void serving.refetch() }} retrying={serving.isFetching} />
  const { candidates } = serving.data

  const submit = async (event: FormEvent): Promise<void> => {
    event.preventDefault()
    setMessage(null)
    try {
      await save.mutateAsync({ serves, runIds: serves === 'chosen' ? runIds : [], organizerIds: serves === 'chosen' ? organizerIds : [] })
      await queryClient.invalidateQueries({ queryKey: [['labs']] })
      setMessage({ tone: 'success', text: 'Saved. Rounds that open from now on follow this choice.' })
    } catch (err) {
      setMessage({ tone: 'danger', text: apiErrorMessage(err) })
    }
  }

  return (
    <section className='card section-card' aria-labelledby='serving-title' data-testid='lab-serving'>
      <header className='section-head'>
        <div>
          <h2 id='serving-title' className='section-title'>Which runs your machines train</h2>
          <p className='muted small'>Runs owned by <strong>{organizationName}</strong>’s own organizers are always served.</p>
        </div>
      </header>
      <form className='form' noValidate onSubmit={(e) => { void submit(e) }}>
        {message !== null && <FormMessage tone={message.tone} testId='serving-message'>{message.text}</FormMessage>}
        <fieldset className='plain-fieldset'>
          <legend className='visually-hidden'>Policy</legend>
          <label className='radio-row'>
            <input type='radio' name='serves' value='all' checked={serves === 'all'} onChange={() => { setServes('all') }} data-testid='serves-all' />
            Every run on this coordinator
          </label>
          <label className='radio-row'>
            <input type='radio' name='serves' value='chosen' checked={serves === 'chosen'} onChange={() => { setServes('chosen') }} data-testid='serves-chosen' />
            Only the runs and organizers I choose
          </label>
        </fieldset>
        {serves === 'chosen' && (
          <div className='field-grid field-grid-2'>
            <fieldset className='plain-fieldset'>
              <legend className='field-label'>Runs</legend>
              {candidates.runs.length === 0 && <p className='muted small'>No runs are waiting or training.</p>}
              {candidates.runs.map((r) => (
                <label key={r.id} className='check-row'>
                  <input type='checkbox' checked={runIds.includes(r.id)} onChange={(e) => { setRunIds(toggled(runIds, r.id, e.target.checked)) }} data-testid='serve-run' data-run={r.name} />
                  {r.name} <span className='muted small'>{r.status}{r.owner !== null ? ` · ${r.owner}` : ''}</span>
                </label>
              ))}
            </fieldset>
            <fieldset className='plain-fieldset'>
              <legend className='field-label'>Every run by these organizers</legend>
              {candidates.organizers.length === 0 && <p className='muted small'>No organizers yet.</p>}
              {candidates.organizers.map((o) => (
                <label key={o.id} className='check-row'>
                  <input type='checkbox' checked={organizerIds.includes(o.id)} onChange={(e) => { setOrganizerIds(toggled(organizerIds, o.id, e.target.checked)) }} data-testid='serve-organizer' />
                  {o.displayName}
                </label>
              ))}
            </fieldset>
          </div>
        )}
        <button type='submit' className='button' disabled={save.isPending} data-testid='save-serving'>{save.isPending ? 'Saving…' : 'Save'}</button>
      </form>
    </section>
  )
}
