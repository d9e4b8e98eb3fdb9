/** Protocol ids spoken between agents and the coordinator, one per conversation. */
export const ENROLL_PROTOCOL = '/barnraise/enroll/1.0.0'
export const HEARTBEAT_PROTOCOL = '/barnraise/heartbeat/1.0.0'
export const WORK_PROTOCOL = '/barnraise/work/1.0.0'
export const BLOB_PROTOCOL = '/barnraise/blob/1.0.0'
export const REPORT_PROTOCOL = '/barnraise/report/1.0.0'
/** Asks the coordinator how a blob splits into blocks and which peers of the run hold it (peer exchange). */
export const SWARM_PROTOCOL = '/barnraise/swarm/1.0.0'
/**
 * Agents exchange blob blocks with each other over Bitswap 1.2 (@helia/bitswap dials only this
 * id). Agents never announce to or search the IPFS network: they dial only the peers the swarm
 * protocol names.
 */
export const PEER_BLOCKS_PROTOCOL = '/ipfs/bitswap/1.2.0'

/** Largest JSON control message either side accepts; tensors never travel in one. */
export const MAX_CONTROL_MESSAGE_BYTES = 64 * 1024
