import { useSyncExternalStore } from 'react'
import type { AnchorHTMLAttributes, MouseEvent, ReactNode } from 'react'

/*
 * A tiny client-side router on the History API. The coordinator answers unknown paths with
 * index.html, so every route here survives a reload and can be shared as a link.
 */

const listeners = new Set<() => void>()

function subscribe (listener: () => void): () => void {
  listeners.add(listener)
  window.addEventListener('popstate', listener)
  return () => {
    listeners.delete(listener)
    window.removeEventListener('popstate', listener)
  }
}

function currentPath (): string {
  return window.location.pathname
}

/** Goes to `to` (a path, optionally with ?query or #hash) without reloading the page. */
export function navigate (to: string, options: { replace?: boolean } = {}): void {
  if (to === window.location.pathname + window.location.search + window.location.hash) return
  if (options.replace === true) window.history.replaceState(null, '', to)
  else window.history.pushState(null, '', to)
  for (const listener of listeners) listener()
  if (options.replace !== true) window.scrollTo(0, 0)
}

/** The current query string (`?next=/labs`); re-renders on navigation. */
export function useSearchParams (): URLSearchParams {
  const search = useSyncExternalStore(subscribe, () => window.location.search, () => '')
  return new URLSearchParams(search)
}

/** The current pathname; re-renders on navigation. */
export function usePathname (): string {
  return useSyncExternalStore(subscribe, currentPath, () => '/')
}

/**
 * Matches `/runs/:runId` style patterns against a pathname; returns the params or null.
 * A trailing slash on the path is ignored.
 */
export function matchPath (pattern: string, pathname: string): Record<string, string> | null {
  const want = pattern.split('/').filter(Boolean)
  const have = pathname.split('/').filter(Boolean)
  if (want.length !== have.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!
    const h = have[i]!
    if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(h)
    else if (w !== h) return null
  }
  return params
}

export interface Route {
  path: string
  title: string
  render: (params: Record<string, string>) => ReactNode
}

/** The first route matching `pathname`, with its params. */
export function resolveRoute (routes: Route[], pathname: string): { route: Route, params: Record<string, string> } | null {
  for (const route of routes) {
    const params = matchPath(route.path, pathname)
    if (params !== null) return { route, params }
  }
  return null
}

type LinkProps = Omit<AnchorHTMLAttributes<HTMLAnchorElement>, 'href'> & { to: string }

function isPlainLeftClick (event: MouseEvent<HTMLAnchorElement>): boolean {
  return event.button === 0 && !event.metaKey && !event.ctrlKey && !event.shiftKey && !event.altKey
}

/** An ordinary link that navigates in-page; modified clicks (new tab, etc.) behave as usual. */
export function Link ({ to, onClick, target, ...rest }: LinkProps): ReactNode {
  return (
    <a
      {...rest}
      href={to}
      target={target}
      onClick={(event) => {
        onClick?.(event)
        if (event.defaultPrevented || !isPlainLeftClick(event) || (target !== undefined && target !== '_self')) return
        event.preventDefault()
        navigate(to)
      }}
    />
  )
}

/** A link that marks itself `aria-current="page"` while its section is open. */
export function NavLink ({ to, ...rest }: LinkProps): ReactNode {
  const pathname = usePathname()
  const active = pathname === to || pathname.startsWith(to.endsWith('/') ? to : `${to}/`)
  return <Link {...rest} to={to} aria-current={active ? 'page' : undefined} />
}
