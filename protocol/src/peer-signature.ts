import { peerIdFromString } from '@libp2p/peer-id'

function base64ToBytes (b64: string): Uint8Array {
  const bin = atob(b64)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

/** Checks an Ed25519 signature by a peer id's key over `text`; false for anything malformed. */
export async function verifyPeerSignature (peerId: string, text: string, signatureB64: string): Promise<boolean> {
  try {
    const key = peerIdFromString(peerId).publicKey
    if (key === undefined) return false
    return await key.verify(new TextEncoder().encode(text), base64ToBytes(signatureB64))
  } catch {
    return false
  }
}
