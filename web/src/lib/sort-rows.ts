import type { ReactNode } from 'react'

/** One column of a sortable table: what it sorts by, and how a cell shows. */
export interface SortColumn<T> {
  key: string
  label: string
  value: (row: T) => string | number
  render?: (row: T) => ReactNode
  numeric?: boolean
}

export interface SortState { key: string, dir: 'asc' | 'desc' }

/** Rows in the order `sort` asks: numbers numerically, text by locale; unknown keys sort by the first column. */
export function sortRows<T> (rows: T[], columns: Array<SortColumn<T>>, sort: SortState): T[] {
  const column = columns.find((c) => c.key === sort.key) ?? columns[0]
  if (column === undefined) return [...rows]
  return [...rows].sort((a, b) => {
    const x = column.value(a)
    const y = column.value(b)
    const cmp = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))
    return sort.dir === 'asc' ? cmp : -cmp
  })
}

/** A header click: the same column flips direction; another starts high to low for numbers, A to Z for text. */
export function nextSort<T> (current: SortState, key: string, columns: Array<SortColumn<T>>): SortState {
  if (current.key === key) return { key, dir: current.dir === 'asc' ? 'desc' : 'asc' }
  return { key, dir: columns.find((c) => c.key === key)?.numeric === true ? 'desc' : 'asc' }
}
