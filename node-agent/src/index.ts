export { probeHardware, parseNvidiaSmi } from './hardware.ts'
