/** Concurrent inbound streams per connection per protocol; agents need one or two. */
export const MAX_INBOUND_STREAMS = 4
/** How long a handler waits for the request message. */
export const REQUEST_TIMEOUT_MS = 10_000
