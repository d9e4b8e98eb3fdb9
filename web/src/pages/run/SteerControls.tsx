import type { ReactNode } from 'react'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useTRPC } from '../../lib/trpc.ts'
import type { RouterOutputs } from '../../lib/trpc.ts'
import { apiErrorMessage } from '../../lib/errors.ts'
import { ConfirmButton } from '../../components/ConfirmButton.tsx'

type Action = RouterOutputs['runs']['access']['actions'][number]

const ACTION_LABEL: Record<Action, string> = { start: 'Start', pause: 'Pause', resume: 'Resume', stop: 'Stop' }

/** Start, pause, resume and stop: the actions the server says this run's status allows (stopping asks first). */
export function SteerControls ({ runId, actions }: { runId: string, actions: Action[] }): ReactNode {
  const trpc = useTRPC()
  const queryClient = useQueryClient()
  const setStatus = useMutation(trpc.runs.setStatus.mutationOptions({
    onSuccess: async () => { await queryClient.invalidateQueries({ queryKey: [['runs']] }) }
  }))
  if (actions.length === 0) return null
  const act = (action: Action): void => { setStatus.mutate({ id: runId, action }) }
  const label = (action: Action): string => setStatus.isPending && setStatus.variables?.action === action ? `${ACTION_LABEL[action]}…` : ACTION_LABEL[action]
  return (
    <div className='steer' data-testid='steer-controls'>
      {actions.map((action) => action === 'stop'
        ? (
          <ConfirmButton
            key={action} label={label(action)} confirmLabel='Yes, stop' variant='panel' className='button button-secondary'
            question='Stop for good? The run completes with its latest checkpoint.' ariaLabel='Confirm stopping the run'
            pending={setStatus.isPending} onConfirm={() => { act('stop') }} testId='steer-stop'
          />
          )
        : (
          <button key={action} type='button' className='button' disabled={setStatus.isPending} onClick={() => { act(action) }} data-testid={`steer-${action}`}>
            {label(action)}
          </button>
          ))}
      {setStatus.isError && <p className='field-error' role='alert'>{apiErrorMessage(setStatus.error)}</p>}
    </div>
  )
}
