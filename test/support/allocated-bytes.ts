/** Bytes of every distinct typed array reachable from `value` (a buffer shared by two views counts once): what an object really allocated. */
export function allocatedBytes (value: unknown, seen = new Set<ArrayBufferLike>(), visited = new Set<object>()): number {
  if (typeof value !== 'object' || value === null || visited.has(value)) return 0
  visited.add(value)
  if (ArrayBuffer.isView(value)) {
    if (seen.has(value.buffer)) return 0
    seen.add(value.buffer)
    return value.buffer.byteLength
  }
  let total = 0
  for (const child of Object.values(value)) total += allocatedBytes(child, seen, visited)
  return total
}
