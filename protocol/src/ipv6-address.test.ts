import { isIPv6 } from 'node:net'
import { describe, expect, it } from 'vitest'
import { ipv4FromGroups, parseIpv6 } from './ipv6-address.ts'

describe('parseIpv6', () => {
  it('reads every notation of one address as the same eight groups', () => {
    const full = [0x2001, 0xdb8, 1, 2, 0, 0, 0, 1]
    for (const text of ['2001:db8:1:2::1', '2001:0db8:0001:0002:0000:0000:0000:0001', '2001:DB8:1:2:0:0:0:1', '2001:db8:1:2::0:1', '2001:db8:1:2:0::1', '2001:db8:1:2::1%eth0', '2001:db8:1:2::1%25eth0']) {
      expect(parseIpv6(text), text).toEqual(full)
    }
    expect(parseIpv6('::')).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
    expect(parseIpv6('::1')).toEqual([0, 0, 0, 0, 0, 0, 0, 1])
    expect(parseIpv6('1::')).toEqual([1, 0, 0, 0, 0, 0, 0, 0])
    expect(parseIpv6('1:2:3:4:5:6:7::'), ':: may stand for one group').toEqual([1, 2, 3, 4, 5, 6, 7, 0])
    expect(parseIpv6('::2:3:4:5:6:7:8')).toEqual([0, 2, 3, 4, 5, 6, 7, 8])
    expect(parseIpv6('fe80::1%eth0'), 'a zone id is dropped').toEqual([0xfe80, 0, 0, 0, 0, 0, 0, 1])
  })

  it('folds a dotted IPv4 tail into the last two groups', () => {
    expect(parseIpv6('::ffff:203.0.113.7')).toEqual([0, 0, 0, 0, 0, 0xffff, 0xcb00, 0x7107])
    expect(parseIpv6('::FFFF:203.0.113.7')).toEqual(parseIpv6('::ffff:cb00:7107'))
    expect(parseIpv6('64:ff9b::192.0.2.33')).toEqual(parseIpv6('64:ff9b::c000:221'))
    expect(parseIpv6('::127.0.0.1')).toEqual([0, 0, 0, 0, 0, 0, 0x7f00, 1])
    expect(parseIpv6('1:2:3:4:5:6:1.2.3.4')).toEqual([1, 2, 3, 4, 5, 6, 0x102, 0x304])
    const g = parseIpv6('::ffff:169.254.169.254')!
    expect(ipv4FromGroups(g[6]!, g[7]!)).toBe('169.254.169.254')
  })

  it('refuses what is not an IPv6 address, as net.isIPv6 does', () => {
    const refused = ['', 'unknown', '203.0.113.7', '1.2.3.4::', '::g', ':1::', '1:::2', '1::2::3', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8::',
      '1:2:3:4:5:6:7:8:9', '00000::1', '::1.2.3', '::1.2.3.4.5', '::ffff:1.2.3.256', '::1.2.3.04', '::ffff:1.2.3.4:5', '1:2:3:4:5:6:7:1.2.3.4',
      'fe80::1%', 'fe80::1%e%t', '[::1]', ' ::1', '::1 ', `${'1:'.repeat(100)}1`]
    for (const text of refused) {
      expect(parseIpv6(text), text).toBeUndefined()
      expect(isIPv6(text), `${text}: Node agrees`).toBe(false)
    }
  })

  it('accepts exactly what net.isIPv6 accepts over many generated texts', () => {
    // Texts built from the pieces addresses are made of, valid and not, in every arrangement up to a length.
    const pieces = ['1', 'ffff', 'FfFf', '0db8', '12345', ':', '::', '1.2.3.4', '255.255.255.255', '256.1.1.1', '%eth0', 'g']
    let texts = ['']
    const mismatches: string[] = []
    let accepted = 0
    for (let depth = 0; depth < 5; depth++) {
      texts = texts.flatMap((t) => pieces.map((p) => t + p))
      for (const text of texts) {
        const groups = parseIpv6(text)
        const wellFormed = groups === undefined || (groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff))
        if ((groups !== undefined) !== isIPv6(text) || !wellFormed) mismatches.push(text)
        if (groups !== undefined) accepted++
      }
    }
    expect(mismatches.slice(0, 20)).toEqual([])
    expect(accepted).toBeGreaterThan(100)
  })
})
