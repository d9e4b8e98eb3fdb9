// The command a person pastes to enroll a machine: one home, so the CLI, the API and the
// dashboard never disagree on it. Browser-safe (no Node imports).

const LOOPBACK = /^\/(ip4\/127\.|ip6\/::1\/|dns4?\/localhost\/)/

/** Whether every address is loopback, so no other machine can reach this coordinator. */
export function loopbackOnly (multiaddrs: readonly string[]): boolean {
  return multiaddrs.length > 0 && multiaddrs.every((m) => LOOPBACK.test(m))
}

/** The address to advertise: the first one another machine could reach, else the first. */
export function advertisedMultiaddr (multiaddrs: readonly string[]): string | undefined {
  return multiaddrs.find((m) => !LOOPBACK.test(m)) ?? multiaddrs[0]
}

/** `pnpm agent join …`, run from a Barnraise checkout (after `bash scripts/setup.sh`). */
export function agentJoinCommand (multiaddrs: readonly string[], token: string): string {
  return `pnpm agent join --coordinator ${advertisedMultiaddr(multiaddrs) ?? '<coordinator multiaddr>'} --token ${token}`
}
