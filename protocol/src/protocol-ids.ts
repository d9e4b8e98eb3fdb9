/** Protocol ids spoken between agents and the coordinator, one per conversation. */
export const ENROLL_PROTOCOL = '/barnraise/enroll/1.0.0'
export const HEARTBEAT_PROTOCOL = '/barnraise/heartbeat/1.0.0'
export const WORK_PROTOCOL = '/barnraise/work/1.0.0'
export const BLOB_PROTOCOL = '/barnraise/blob/1.0.0'
export const REPORT_PROTOCOL = '/barnraise/report/1.0.0'

/** Largest JSON control message either side accepts; tensors never travel in one. */
export const MAX_CONTROL_MESSAGE_BYTES = 64 * 1024
