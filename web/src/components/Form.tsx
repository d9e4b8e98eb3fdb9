import type { ReactNode } from 'react'

/** aria attributes tying an input to its hint and error. */
export function fieldAria (id: string, error: string | undefined, hint: ReactNode | undefined): { 'aria-invalid'?: true, 'aria-describedby'?: string } {
  const ids = [error !== undefined ? `${id}-error` : undefined, hint !== undefined ? `${id}-hint` : undefined].filter((x) => x !== undefined)
  return { ...(error !== undefined ? { 'aria-invalid': true as const } : {}), ...(ids.length > 0 ? { 'aria-describedby': ids.join(' ') } : {}) }
}

/**
 * A labelled form field with its hint and, when something is wrong, an inline message naming
 * the problem (`data-testid="field-error"`, `data-field` = the spec path, e.g. recipe.seqLen).
 */
export function Field ({ id, label, hint, error, field, children, className }: {
  id: string
  label: ReactNode
  hint?: ReactNode
  error?: string
  /** the API's name for this field, for tests and server-side errors */
  field?: string
  children: ReactNode
  className?: string
}): ReactNode {
  return (
    <div className={['field', error !== undefined ? 'field-invalid' : '', className ?? ''].join(' ').trim()} data-field={field}>
      <label className='field-label' htmlFor={id}>{label}</label>
      {children}
      {error !== undefined && <p className='field-error' id={`${id}-error`} data-testid='field-error' data-field={field ?? id}>{error}</p>}
      {hint !== undefined && error === undefined && <p className='field-hint' id={`${id}-hint`}>{hint}</p>}
    </div>
  )
}

/** A banner for a form's outcome: what went wrong overall, or that it worked. */
export function FormMessage ({ tone, children, testId }: { tone: 'danger' | 'success' | 'info', children: ReactNode, testId?: string }): ReactNode {
  return (
    <div className={`banner banner-${tone}`} role={tone === 'danger' ? 'alert' : 'status'} data-testid={testId}>
      <span>{children}</span>
    </div>
  )
}

/** A row of mutually exclusive options that looks like a switch ("By round" | "By tokens"). */
export function Segmented<T extends string> ({ value, options, onChange, label, testId }: {
  value: T
  options: Array<{ value: T, label: string }>
  onChange: (value: T) => void
  label: string
  testId?: string
}): ReactNode {
  return (
    <div className='segmented' role='radiogroup' aria-label={label} data-testid={testId}>
      {options.map((o) => (
        <button
          key={o.value}
          type='button'
          role='radio'
          aria-checked={o.value === value}
          className={o.value === value ? 'segmented-on' : undefined}
          onClick={() => { onChange(o.value) }}
        >
          {o.label}
        </button>
      ))}
    </div>
  )
}
