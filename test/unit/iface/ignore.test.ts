import { describe, expect, it } from 'vitest';
import { createIgnoreRule, globToRegExp } from '../../../core/iface/ignore.js';

describe('globToRegExp', () => {
  it('matches * and ? and nothing else specially', () => {
    expect(globToRegExp('wlx*').test('wlx00c0ca')).toBe(true);
    expect(globToRegExp('wlx*').test('xwlx')).toBe(false);
    expect(globToRegExp('eth?').test('eth1')).toBe(true);
    expect(globToRegExp('eth?').test('eth10')).toBe(false);
    expect(globToRegExp('br.0').test('brx0')).toBe(false);
    expect(globToRegExp('a+b(c)[d]').test('a+b(c)[d]')).toBe(true);
  });
});

describe('createIgnoreRule', () => {
  const rule = createIgnoreRule(['wlx*', 'eth2']);

  it('ignores loopback, container bridges and bridge ports by default', () => {
    expect(rule({ name: 'lo', kind: 'loopback' })).toBe(true);
    expect(rule({ name: 'docker0', kind: 'virtual', linkKind: 'bridge' })).toBe(true);
    expect(rule({ name: 'br-3f2a91c0d1e2', kind: 'virtual', linkKind: 'bridge' })).toBe(true);
    expect(rule({ name: 'virbr0', kind: 'virtual' })).toBe(true);
    expect(
      rule({ name: 'veth1a2b3c4', kind: 'virtual', linkKind: 'veth', master: 'docker0' }),
    ).toBe(true);
    expect(rule({ name: 'ifb0', kind: 'virtual', linkKind: 'ifb' })).toBe(true);
  });

  it('keeps uplinks, VPN tunnels and veths that are no bridge port', () => {
    expect(rule({ name: 'wlp2s0', kind: 'wifi' })).toBe(false);
    expect(rule({ name: 'wg0', kind: 'virtual', linkKind: 'wireguard' })).toBe(false);
    expect(rule({ name: 'up0', kind: 'virtual', linkKind: 'veth' })).toBe(false);
    // A host bridge that carries the real uplink is not a container bridge.
    expect(rule({ name: 'br0', kind: 'virtual', linkKind: 'bridge' })).toBe(false);
  });

  it("adds the user's names and globs", () => {
    expect(rule({ name: 'wlx00c0ca123456', kind: 'wifi' })).toBe(true);
    expect(rule({ name: 'eth2', kind: 'ethernet' })).toBe(true);
    expect(rule({ name: 'eth1', kind: 'ethernet' })).toBe(false);
  });

  it('can drop the defaults and keep only the user list', () => {
    const only = createIgnoreRule(['eth2'], false);
    expect(only({ name: 'lo', kind: 'loopback' })).toBe(false);
    expect(only({ name: 'docker0', kind: 'virtual' })).toBe(false);
    expect(only({ name: 'eth2', kind: 'ethernet' })).toBe(true);
  });
});
