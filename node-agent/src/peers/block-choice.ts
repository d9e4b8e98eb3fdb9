// Which block to ask a peer for next: rarest first, as BitTorrent does, so a block only one
// peer holds is copied before that peer leaves, and copies of every block spread evenly.

/** How many of `haves` (peers' bitfields, one byte a block) hold each block. */
export function blockAvailability (haves: Iterable<Uint8Array | undefined>, count: number): Uint16Array {
  const available = new Uint16Array(count)
  for (const have of haves) {
    if (have === undefined) continue
    for (let b = 0; b < count; b++) if (have[b] === 1 && available[b]! < 0xffff) available[b]!++
  }
  return available
}

/**
 * A block the peer holds that this agent still needs and nobody is already sending: one held by
 * the fewest known peers, and among those one from a random place, so that agents asking the
 * same peer do not all want the same block. -1 when there is none.
 */
export function pickBlock (have: Uint8Array, present: Uint8Array, reserved: Uint8Array, inFlight: Uint8Array, available: Uint16Array, random = Math.random): number {
  const n = present.length
  const start = Math.floor(random() * n)
  let best = -1
  let fewest = Number.POSITIVE_INFINITY
  for (let k = 0; k < n; k++) {
    const b = (start + k) % n
    if (have[b] !== 1 || present[b] !== 0 || reserved[b] !== 0 || inFlight[b] !== 0) continue
    // The peer being asked holds it, so at least one does even before its bitfield is counted.
    const copies = Math.max(1, available[b] ?? 1)
    if (copies < fewest) {
      fewest = copies
      best = b
      if (copies === 1) break
    }
  }
  return best
}
