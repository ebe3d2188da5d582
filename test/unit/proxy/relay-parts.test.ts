import { describe, expect, it } from 'vitest';
import { DestinationPolicy } from '../../../core/relay/destination-policy.js';
import {
  encodeForwardReply,
  ForwardReplyDecoder,
  ForwardStatus,
} from '../../../core/relay/forward-reply.js';
import { formatTcpTarget, parseForwardTarget } from '../../../core/relay/forward-target.js';
import { TokenBucket } from '../../../core/relay/token-bucket.js';
import { ManualClock } from '../../../core/util/clock.js';

describe('relay destination policy', () => {
  const policy = new DestinationPolicy({ ownAddresses: ['203.0.113.7'] });

  it('refuses loopback, private, CGNAT, link-local, ULA, multicast and its own address by default', () => {
    for (const a of [
      '127.0.0.1',
      '127.1.2.3',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '100.64.0.1',
      '169.254.169.254',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '::1',
      '::',
      'fd12:3456::1',
      'fe80::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '203.0.113.7',
    ])
      expect({ a, ok: policy.check(a).ok }).toEqual({ a, ok: false });
    for (const a of ['93.184.216.34', '172.32.0.1', '2606:4700::1111', '::ffff:1.1.1.1'])
      expect({ a, ok: policy.check(a).ok }).toEqual({ a, ok: true });
  });

  it('allows what --allow-private or an allow list says', () => {
    expect(new DestinationPolicy({ allowPrivate: true }).check('127.0.0.1').ok).toBe(true);
    const lan = new DestinationPolicy({ allow: ['192.168.1.0/24', '::1'] });
    expect(lan.check('192.168.1.9').ok).toBe(true);
    expect(lan.check('192.168.2.9').ok).toBe(false);
    expect(lan.check('::1').ok).toBe(true);
    expect(() => new DestinationPolicy({ allow: ['nonsense/99'] })).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_CONFIG' }),
    );
  });
});

describe('relay reply and targets', () => {
  it('decodes a reply split anywhere and hands back the bytes after it', () => {
    const bytes = Buffer.concat([
      encodeForwardReply({ status: ForwardStatus.ok, text: '10.0.0.1:4000' }),
      Buffer.from('data'),
    ]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const d = new ForwardReplyDecoder();
      const first = d.push(bytes.subarray(0, cut));
      const done = first ?? d.push(bytes.subarray(cut));
      expect(done?.reply).toEqual({ status: 0, text: '10.0.0.1:4000' });
      const rest =
        first === undefined ? done!.rest : Buffer.concat([first.rest, bytes.subarray(cut)]);
      expect(rest.toString()).toBe('data');
    }
    expect(() => new ForwardReplyDecoder().push(Buffer.from('HTTP'))).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_WIRE_BAD_VALUE' }),
    );
  });

  it('formats and parses forwarding targets, IPv6 in brackets, and rejects the rest', () => {
    expect(formatTcpTarget('2001:db8::1', 443)).toBe('tcp:[2001:db8::1]:443');
    expect(parseForwardTarget('tcp:[2001:db8::1]:443')).toEqual({
      kind: 'tcp',
      host: '2001:db8::1',
      port: 443,
    });
    expect(parseForwardTarget('tcp:example.com:80')).toEqual({
      kind: 'tcp',
      host: 'example.com',
      port: 80,
    });
    expect(parseForwardTarget('udp')).toEqual({ kind: 'udp' });
    for (const bad of [
      'tcp:example.com:0',
      'tcp:example.com:70000',
      'tcp:a b:80',
      'tcp:[nothex]:1',
      'tcp:x',
      'sink',
      'echo',
    ])
      expect({ bad, t: parseForwardTarget(bad) }).toEqual({ bad, t: undefined });
  });
});

describe('token bucket', () => {
  it('lets a burst through, then paces to the rate', () => {
    const clock = new ManualClock();
    const bucket = new TokenBucket(1000, 500, clock);
    expect(bucket.take(500)).toBe(0);
    expect(bucket.take(250)).toBe(250);
    clock.advance(250);
    expect(bucket.delayMs()).toBe(0);
    clock.advance(10_000);
    expect(bucket.take(600)).toBe(100); // refilled only up to the burst
  });
});
