export { probeHardware, parseNvidiaSmi } from './hardware.ts'
export { createAgentHost } from './host.ts'
