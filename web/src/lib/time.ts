import { useEffect, useState } from 'react'

/** The current time, refreshed every `intervalMs`, so relative times stay honest. */
export function useNow (intervalMs = 1_000): number {
  const [now, setNow] = useState(() => Date.now())
  useEffect(() => {
    const timer = setInterval(() => { setNow(Date.now()) }, intervalMs)
    return () => { clearInterval(timer) }
  }, [intervalMs])
  return now
}

const absoluteFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' })

export function formatAbsolute (iso: string): string {
  return absoluteFormat.format(new Date(iso))
}

/** "just now", "42 s ago", "5 min ago", "3 h ago", "2 d ago", then a date. */
export function formatRelative (iso: string, now: number): string {
  const seconds = Math.round((now - new Date(iso).getTime()) / 1000)
  if (seconds < 5) return 'just now'
  if (seconds < 60) return `${seconds} s ago`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min ago`
  const hours = Math.floor(minutes / 60)
  if (hours < 24) return `${hours} h ago`
  const days = Math.floor(hours / 24)
  if (days < 14) return `${days} d ago`
  return dateFormat.format(new Date(iso))
}

/** Whether a CSS media query matches, kept current (e.g. show fewer rows on a phone). */
export function useMediaQuery (query: string): boolean {
  const [matches, setMatches] = useState(() => typeof window !== 'undefined' && window.matchMedia(query).matches)
  useEffect(() => {
    const list = window.matchMedia(query)
    const update = (): void => { setMatches(list.matches) }
    update()
    list.addEventListener('change', update)
    return () => { list.removeEventListener('change', update) }
  }, [query])
  return matches
}
