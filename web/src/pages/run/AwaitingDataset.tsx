import type { ReactNode } from 'react'
import { FormMessage } from '../../components/Form.tsx'
import { Meter } from '../../components/Meter.tsx'
import { formatCount } from '../../lib/format.ts'
import type { RunDetail } from './run-types.ts'

/**
 * A run launched before its dataset was tokenized: what it waits for, the dataset's upload and
 * tokenizing progress (live, as the dataset moves), and whether it starts by itself once ready.
 */
export function AwaitingDataset ({ awaiting, canSteer }: { awaiting: NonNullable<RunDetail['awaiting']>, canSteer: boolean }): ReactNode {
  const d = awaiting.dataset
  const next = awaiting.startWhenReady
    ? 'it starts by itself when the dataset is ready'
    : `then it stays a draft until ${canSteer ? 'you start it' : 'its organizer starts it'}`
  return (
    <section className='card section-card section' data-testid='run-awaiting' data-dataset-status={d.status} aria-labelledby='awaiting-title'>
      <h2 id='awaiting-title' className='section-title'>Waiting for its dataset</h2>
      <FormMessage tone='info' testId='run-awaiting-note'>
        This run trains on “{d.name}” ({d.fileName}), which is {d.status === 'uploading' ? 'still uploading' : 'being tokenized'} with {d.tokenizer}; {next}.
      </FormMessage>
      <div className='meters meters-compact'>
        <Meter label='Uploaded' done={d.receivedBytes} total={d.fileBytes} testId='awaiting-upload-meter' />
        {d.status === 'tokenizing' && <Meter label='Tokenized' done={d.readBytes} total={d.fileBytes} testId='awaiting-tokenize-meter' />}
      </div>
      {d.status === 'tokenizing' && (
        <p className='muted small' data-testid='awaiting-counts'>
          {formatCount(d.documents)} documents, {formatCount(d.trainTokens)} training tokens so far{d.badRows > 0 ? `, ${formatCount(d.badRows)} bad rows skipped` : ''}.
        </p>
      )}
    </section>
  )
}
