import type { ReactNode, SVGProps } from 'react'

type IconProps = SVGProps<SVGSVGElement>

function Svg ({ children, ...props }: IconProps & { children: ReactNode }): ReactNode {
  return (
    <svg viewBox='0 0 24 24' width='20' height='20' fill='none' stroke='currentColor' strokeWidth='1.8' strokeLinecap='round' strokeLinejoin='round' aria-hidden='true' focusable='false' {...props}>
      {children}
    </svg>
  )
}

/** The Barnraise mark: a barn going up. */
export function Logo (props: IconProps): ReactNode {
  return (
    <svg viewBox='0 0 32 32' width='28' height='28' aria-hidden='true' focusable='false' {...props}>
      <rect width='32' height='32' rx='7' fill='var(--brand)' />
      <path d='M6 15 16 7l10 8v10H6z' fill='#fff' />
      <path d='M12.5 25v-6.5h7V25' fill='var(--brand)' />
      <path d='M12.5 18.5l7 6.5m0-6.5-7 6.5' stroke='#fff' strokeWidth='1.3' />
    </svg>
  )
}

export function ServerIcon (props: IconProps): ReactNode {
  return <Svg {...props}><rect x='3' y='4' width='18' height='7' rx='2' /><rect x='3' y='13' width='18' height='7' rx='2' /><path d='M7 7.5h.01M7 16.5h.01' /></Svg>
}

export function ChartIcon (props: IconProps): ReactNode {
  return <Svg {...props}><path d='M4 19V5' /><path d='M4 19h16' /><path d='m7 14 4-4 3 3 5-6' /></Svg>
}

export function LedgerIcon (props: IconProps): ReactNode {
  return <Svg {...props}><path d='M6 3h11a2 2 0 0 1 2 2v16l-3-2-3 2-3-2-3 2V4a1 1 0 0 1 1-1z' /><path d='M9 8h6M9 12h6' /></Svg>
}

export function HandshakeIcon (props: IconProps): ReactNode {
  return <Svg {...props}><path d='M12 21s-7-4.4-7-10a4 4 0 0 1 7-2.6A4 4 0 0 1 19 11c0 5.6-7 10-7 10z' /></Svg>
}

export function AlertIcon (props: IconProps): ReactNode {
  return <Svg {...props}><path d='M12 3 2 20h20L12 3z' /><path d='M12 10v4M12 17h.01' /></Svg>
}

export function CopyIcon (props: IconProps): ReactNode {
  return <Svg width='16' height='16' {...props}><rect x='9' y='9' width='11' height='11' rx='2' /><path d='M5 15V5a2 2 0 0 1 2-2h10' /></Svg>
}

export function CheckIcon (props: IconProps): ReactNode {
  return <Svg width='16' height='16' {...props}><path d='m5 12 5 5 9-10' /></Svg>
}

export function LockIcon (props: IconProps): ReactNode {
  return <Svg {...props}><rect x='4' y='10' width='16' height='11' rx='2' /><path d='M8 10V7a4 4 0 0 1 8 0v3' /></Svg>
}

export function UserIcon (props: IconProps): ReactNode {
  return <Svg {...props}><circle cx='12' cy='8' r='4' /><path d='M4 21a8 8 0 0 1 16 0' /></Svg>
}

export function BeakerIcon (props: IconProps): ReactNode {
  return <Svg {...props}><path d='M9 3h6M10 3v6L4.5 19a1.5 1.5 0 0 0 1.3 2h12.4a1.5 1.5 0 0 0 1.3-2L14 9V3' /><path d='M7 15h10' /></Svg>
}

export function DownloadIcon (props: IconProps): ReactNode {
  return <Svg width='16' height='16' {...props}><path d='M12 4v11m0 0-4-4m4 4 4-4' /><path d='M5 20h14' /></Svg>
}

export function ShieldIcon (props: IconProps): ReactNode {
  return <Svg {...props}><path d='M12 3 5 6v6c0 4.4 3 7.6 7 9 4-1.4 7-4.6 7-9V6l-7-3z' /><path d='m9 12 2 2 4-4' /></Svg>
}

export function ChevronDownIcon (props: IconProps): ReactNode {
  return <Svg width='16' height='16' {...props}><path d='m6 9 6 6 6-6' /></Svg>
}

export function PlusIcon (props: IconProps): ReactNode {
  return <Svg width='16' height='16' {...props}><path d='M12 5v14M5 12h14' /></Svg>
}
