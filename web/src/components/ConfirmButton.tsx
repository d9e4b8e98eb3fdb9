import { useState } from 'react'
import type { ReactNode } from 'react'

interface ConfirmButtonProps {
  /** The first button, e.g. "Revoke…". */
  label: ReactNode
  /** The button that acts, e.g. "Revoke". */
  confirmLabel: ReactNode
  cancelLabel?: string
  /** Said beside the two buttons (the panel form); none for the inline form. */
  question?: ReactNode
  onConfirm: () => void
  /** While the action runs, both buttons are disabled. */
  pending?: boolean
  /** `data-testid` of the first button; the acting one gets `<testId>-confirm`. */
  testId: string
  className?: string
  /** `inline`: the two buttons in place of the first (table rows); `panel`: a tinted group with the question. */
  variant?: 'inline' | 'panel'
  ariaLabel?: string
}

/**
 * A button that asks before it acts: the first click swaps it for the question, the acting
 * button and a way back. Used for everything that cannot be undone (revoking, stopping).
 */
export function ConfirmButton ({ label, confirmLabel, cancelLabel = 'Cancel', question, onConfirm, pending = false, testId, className = 'button button-ghost button-small', variant = 'inline', ariaLabel }: ConfirmButtonProps): ReactNode {
  const [asking, setAsking] = useState(false)
  if (!asking) {
    return <button type='button' className={className} disabled={pending} onClick={() => { setAsking(true) }} data-testid={testId}>{label}</button>
  }
  const buttons = (
    <>
      <button type='button' className='button button-danger button-small' disabled={pending} onClick={onConfirm} data-testid={`${testId}-confirm`}>{confirmLabel}</button>
      <button type='button' className='button button-ghost button-small' onClick={() => { setAsking(false) }}>{cancelLabel}</button>
    </>
  )
  if (variant === 'inline') return <span className='inline-confirm'>{buttons}</span>
  return (
    <div className='steer-confirm' role='group' aria-label={ariaLabel}>
      {question !== undefined && <span className='small'>{question}</span>}
      {buttons}
    </div>
  )
}
