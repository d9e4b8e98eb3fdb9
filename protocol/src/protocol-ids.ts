/** Protocol ids spoken between agents and the coordinator, one per conversation. */
export const ENROLL_PROTOCOL = '/barnraise/enroll/1.0.0'
export const HEARTBEAT_PROTOCOL = '/barnraise/heartbeat/1.0.0'
export const WORK_PROTOCOL = '/barnraise/work/1.0.0'
export const BLOB_PROTOCOL = '/barnraise/blob/1.0.0'
export const REPORT_PROTOCOL = '/barnraise/report/1.0.0'
/** Asks the coordinator how a blob splits into blocks and which peers of the run hold it (peer exchange). */
export const SWARM_PROTOCOL = '/barnraise/swarm/1.0.0'
/** Agents of a run ask each other which blocks of a blob they hold, and for one block at a time. */
export const PEER_BLOCKS_PROTOCOL = '/barnraise/blocks/1.0.0'

/** Largest JSON control message either side accepts; tensors never travel in one. */
export const MAX_CONTROL_MESSAGE_BYTES = 64 * 1024
