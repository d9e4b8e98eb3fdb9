import { Fragment } from 'react'
import type { ReactNode } from 'react'
import { useCopy } from '../lib/use-copy.ts'
import { CheckIcon, CopyIcon } from './Icons.tsx'

/** A copy-to-clipboard button that says "Copied" for a moment. */
export function CopyButton ({ text, label, testId }: { text: string, label: string, testId?: string }): ReactNode {
  const { copied, copy } = useCopy(text)
  return (
    <button
      type='button'
      className='button button-ghost button-icon'
      aria-label={copied ? 'Copied' : `Copy: ${label}`}
      title={copied ? 'Copied' : 'Copy to clipboard'}
      data-testid={testId}
      data-copied={copied ? 'true' : undefined}
      onClick={copy}
    >
      {copied ? <CheckIcon /> : <CopyIcon />}
    </button>
  )
}

/** A shell command in a box, with a copy button. */
export function CommandBlock ({ command, label, testId, wrap = false }: { command: string, label: string, testId?: string, wrap?: boolean }): ReactNode {
  return (
    <div className={wrap ? 'command command-wrap' : 'command'} data-testid={testId}>
      <pre aria-label={label}><code>
        <span className='command-prompt' aria-hidden='true'>$ </span>
        {/* Narrow screens wrap between words, never inside `--flag`. */}
        {command.split(' ').map((word, i) => <Fragment key={i}>{i > 0 && ' '}<span className='command-word'>{word}</span></Fragment>)}
      </code></pre>
      <CopyButton text={command} label={label} />
    </div>
  )
}

/** A multi-line snippet (Python, a shell script) with a language tag and a copy button. */
export function CodeBlock ({ code, language, label, testId }: { code: string, language: string, label: string, testId?: string }): ReactNode {
  return (
    <div className='codeblock' data-testid={testId}>
      <div className='codeblock-bar'>
        <span className='codeblock-lang'>{language}</span>
        <CopyButton text={code} label={label} />
      </div>
      <pre aria-label={label}><code>{code}</code></pre>
    </div>
  )
}
