/** Reported to the coordinator on enrollment. */
export const AGENT_VERSION = '0.1.0'
