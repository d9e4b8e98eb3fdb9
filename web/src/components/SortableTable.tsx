import { useState } from 'react'
import type { ReactNode } from 'react'
import { nextSort, sortRows } from '../lib/sort-rows.ts'
import type { SortColumn, SortState } from '../lib/sort-rows.ts'

/** A table whose column headers sort it (and, on a phone, a "Sort by" menu); the first click on a number column sorts high to low. */
export function SortableTable<T> ({ rows, columns, initialSort, caption, testId, rowTestId, rowKey }: {
  rows: T[]
  columns: Array<SortColumn<T>>
  initialSort: string
  caption: string
  testId: string
  rowTestId: string
  rowKey: (row: T) => string
}): ReactNode {
  const [sort, setSort] = useState<SortState>({ key: initialSort, dir: 'desc' })
  const sorted = sortRows(rows, columns, sort)
  const toggle = (key: string): void => { setSort((s) => nextSort(s, key, columns)) }
  return (
    <>
      <label className='sort-phone'>
        Sort by
        <select className='input' value={`${sort.key}:${sort.dir}`} onChange={(e) => { const [key, dir] = e.target.value.split(':'); setSort({ key: key!, dir: dir as 'asc' | 'desc' }) }}>
          {columns.flatMap((c) => [
            <option key={`${c.key}:desc`} value={`${c.key}:desc`}>{c.label} {c.numeric === true ? '(high to low)' : '(Z to A)'}</option>,
            <option key={`${c.key}:asc`} value={`${c.key}:asc`}>{c.label} {c.numeric === true ? '(low to high)' : '(A to Z)'}</option>
          ])}
        </select>
      </label>
      <div className='card table-card'>
        <table className='table table-responsive table-grid' data-testid={testId} data-sort={`${sort.key}:${sort.dir}`}>
          <caption className='visually-hidden'>{caption}</caption>
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c.key} scope='col' className={c.numeric === true ? 'num-col' : undefined} aria-sort={sort.key === c.key ? (sort.dir === 'asc' ? 'ascending' : 'descending') : 'none'}>
                  <button type='button' className='sort-button' onClick={() => { toggle(c.key) }} data-testid={`sort-${c.key}`}>
                    {c.label}
                    <span className='sort-arrow' aria-hidden='true'>{sort.key === c.key ? (sort.dir === 'asc' ? '▲' : '▼') : '↕'}</span>
                  </button>
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {sorted.map((row) => (
              <tr key={rowKey(row)} data-testid={rowTestId}>
                {columns.map((c, i) => (
                  <td key={c.key} data-label={c.label} className={[i === 0 ? 'cell-primary' : '', c.numeric === true ? 'num num-col' : ''].join(' ').trim() || undefined}>
                    {c.render !== undefined ? c.render(row) : c.value(row)}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  )
}
