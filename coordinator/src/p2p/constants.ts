/** Concurrent inbound streams per connection per protocol; agents need one or two. */
export const MAX_INBOUND_STREAMS = 4
