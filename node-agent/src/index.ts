export { probeHardware, parseNvidiaSmi } from './hardware.ts'
export { createAgentHost } from './host.ts'
export { CoordinatorClient, RefusedError, parseCoordinatorAddress } from './coordinator-client.ts'
export { BlobCache } from './blob-cache.ts'
