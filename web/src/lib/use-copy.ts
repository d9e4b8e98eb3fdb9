import { useEffect, useState } from 'react'
import { copyText } from './clipboard.ts'

/** Copy-to-clipboard state for a button: `copied` is true for a moment after a copy worked. */
export function useCopy (text: string): { copied: boolean, copy: () => void } {
  const [copied, setCopied] = useState(false)
  useEffect(() => {
    if (!copied) return
    const timer = setTimeout(() => { setCopied(false) }, 1_500)
    return () => { clearTimeout(timer) }
  }, [copied])
  return { copied, copy: () => { void copyText(text).then((ok) => { setCopied(ok) }) } }
}
