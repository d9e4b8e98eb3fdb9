import { Fragment, useEffect, useState } from 'react'
import type { ReactNode } from 'react'
import { CheckIcon, CopyIcon } from './Icons.tsx'

/** A shell command in a box, with a copy button where the browser allows it. */
export function CommandBlock ({ command, label }: { command: string, label: string }): ReactNode {
  const [copied, setCopied] = useState(false)
  const canCopy = typeof navigator !== 'undefined' && navigator.clipboard !== undefined && window.isSecureContext
  useEffect(() => {
    if (!copied) return
    const timer = setTimeout(() => { setCopied(false) }, 1_500)
    return () => { clearTimeout(timer) }
  }, [copied])
  return (
    <div className='command'>
      <pre aria-label={label}><code>
        <span className='command-prompt' aria-hidden='true'>$ </span>
        {/* Narrow screens wrap between words, never inside `--flag`. */}
        {command.split(' ').map((word, i) => <Fragment key={i}>{i > 0 && ' '}<span className='command-word'>{word}</span></Fragment>)}
      </code></pre>
      {canCopy && (
        <button
          type='button'
          className='button button-ghost button-icon'
          aria-label={copied ? 'Copied' : `Copy: ${label}`}
          title={copied ? 'Copied' : 'Copy to clipboard'}
          onClick={() => { void navigator.clipboard.writeText(command).then(() => { setCopied(true) }, () => {}) }}
        >
          {copied ? <CheckIcon /> : <CopyIcon />}
        </button>
      )}
    </div>
  )
}
