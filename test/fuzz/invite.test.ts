/**
 * Fuzzing the invite parser (core/handshake/invite.ts): invites are pasted from chat
 * and terminals, so any string must give an invite or InviteError naming a field,
 * and whatever parses must format back to an invite that parses to the same thing.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatInvite, InviteError, parseInvite } from '../../core/handshake/invite.js';
import { damaged, fuzz, LIMITS, RUNS, TIME_LIMIT_MS } from './harness.js';

const hostArb = fc.oneof(
  fc.domain(),
  fc.ipV4(),
  fc.ipV6(),
  fc.constantFrom('localhost', 'relay.example.net', '::1'),
);
const inviteArb = fc
  .record({
    host: hostArb,
    port: fc.integer({ min: 1, max: 65535 }),
    fingerprint: fc
      .uint8Array({ minLength: 32, maxLength: 32 })
      .map((b) => Buffer.from(b).toString('hex')),
    keyId: fc.uint8Array({ minLength: 8, maxLength: 8 }).map((b) => Buffer.from(b).toString('hex')),
    key: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  })
  .map((i) => {
    try {
      return formatInvite({ ...i, key: Buffer.from(i.key) });
    } catch {
      // fc.domain() may give a name our stricter host rules refuse; keep it as text.
      return `braid://${i.host}:${i.port}#${i.fingerprint}?key=${i.keyId}.${Buffer.from(i.key).toString('base64url')}`;
    }
  });
const textArb = fc.oneof(
  {
    weight: 4,
    arbitrary: damaged(inviteArb.map((s) => new Uint8Array(Buffer.from(s)))).map((b) =>
      b.toString('utf8'),
    ),
  },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 300 }) },
  { weight: 1, arbitrary: inviteArb.map((s) => `  ${s.toUpperCase()}\n`) },
);

describe(`invite parser fuzzing (${RUNS} inputs)`, () => {
  it(
    'gives an invite or an InviteError naming the field, and what parses round-trips',
    () => {
      let parsed = 0;
      const report = fuzz('invite', textArb, (text) => {
        let invite;
        try {
          invite = parseInvite(text);
        } catch (err) {
          if (!(err instanceof InviteError) || err.code !== 'BRAID_ERR_BAD_INVITE') throw err;
          // The key itself never appears in the error.
          const key = /key=[^.]*\.([A-Za-z0-9_-]{20,})/.exec(text)?.[1];
          if (key !== undefined) {
            expect(JSON.stringify(err.value ?? null)).not.toContain(key);
            expect(err.message).not.toContain(key);
          }
          return;
        }
        parsed++;
        expect(invite.key.length).toBe(32);
        expect(invite.port).toBeGreaterThanOrEqual(1);
        expect(invite.port).toBeLessThanOrEqual(65535);
        expect(parseInvite(formatInvite(invite))).toEqual(invite);
      });
      console.log(`  parsed ${parsed}`);
      expect(report.slowestInputMs).toBeLessThan(LIMITS.slowestInputMs);
      expect(report.heapGrowthBytes).toBeLessThan(LIMITS.heapGrowthBytes);
      if (RUNS >= 1000) expect(parsed).toBeGreaterThan(0);
    },
    TIME_LIMIT_MS + 30_000,
  );

  // Found by this fuzzer: with '#' or '?' lost in a paste, the host, port or
  // fingerprint error carried the key into messages and logs.
  it('never shows the key in the error of a damaged invite', () => {
    const key = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    for (const text of [
      `braid://a.aa.${'0'.repeat(64)}?key=0000000000000000.${key}`,
      `braid://aa.aaa:10000#${'0'.repeat(59)}key=0000000000000000.${key}`,
      `braid://10.100.100.100:10000${'0'.repeat(60)}key=0000000000000000.${key}`,
      `braid://h:1#${'0'.repeat(64)}?key=${key}`,
    ]) {
      try {
        parseInvite(text);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(InviteError);
        expect(JSON.stringify((err as InviteError).value ?? null)).not.toContain(key);
        expect((err as InviteError).message).not.toContain(key);
      }
    }
  });
});
