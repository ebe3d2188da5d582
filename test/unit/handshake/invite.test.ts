import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  InviteError,
  formatInvite,
  parseInvite,
  type Invite,
  type InviteField,
} from '../../../core/handshake/invite.js';

const FP = 'a1'.repeat(32);
const KEY_ID = '0123456789abcdef';
const key = Buffer.alloc(32, 7);
const KEY_TEXT = key.toString('base64url');

function failure(text: string): { code: string; field: InviteField; message: string } {
  try {
    parseInvite(text);
  } catch (err) {
    if (err instanceof InviteError)
      return { code: err.code, field: err.field, message: err.message };
    throw err;
  }
  throw new Error(`parsed: ${text}`);
}

describe('invite round trip', () => {
  it.each([
    ['a host name', 'relay.example.net'],
    ['an IPv4 address', '192.0.2.10'],
    ['an IPv6 address', '2001:db8::1'],
    ['IPv6 loopback', '::1'],
  ])('survives format and parse with %s', (_, host) => {
    const invite: Invite = {
      host,
      port: 4433,
      fingerprint: FP,
      keyId: KEY_ID,
      key: randomBytes(32),
    };
    const text = formatInvite(invite);
    const parsed = parseInvite(text);
    expect(parsed.host).toBe(host);
    expect(parsed.port).toBe(4433);
    expect(parsed.fingerprint).toBe(FP);
    expect(parsed.keyId).toBe(KEY_ID);
    expect(parsed.key.equals(invite.key)).toBe(true);
  });

  it('writes the documented form, with IPv6 hosts in brackets', () => {
    expect(formatInvite({ host: '192.0.2.10', port: 9, fingerprint: FP, keyId: KEY_ID, key })).toBe(
      `braid://192.0.2.10:9#${FP}?key=${KEY_ID}.${KEY_TEXT}`,
    );
    expect(formatInvite({ host: '::1', port: 9, fingerprint: FP, keyId: KEY_ID, key })).toBe(
      `braid://[::1]:9#${FP}?key=${KEY_ID}.${KEY_TEXT}`,
    );
  });

  it('accepts surrounding whitespace and upper-case hex, normalising to lower case', () => {
    const parsed = parseInvite(
      `  braid://h:1#${FP.toUpperCase()}?key=${KEY_ID.toUpperCase()}.${KEY_TEXT}\n`,
    );
    expect(parsed.fingerprint).toBe(FP);
    expect(parsed.keyId).toBe(KEY_ID);
  });
});

describe('bad invites', () => {
  const tail = `#${FP}?key=${KEY_ID}.${KEY_TEXT}`;
  it.each<[string, string, InviteField]>([
    ['another scheme', `https://h:1${tail}`, 'scheme'],
    ['no scheme', `h:1${tail}`, 'scheme'],
    ['an empty host', `braid://:1${tail}`, 'host'],
    ['a host with invalid characters', `braid://ex_ample.com:1${tail}`, 'host'],
    ['an unbracketed IPv6 host', `braid://2001:db8::1:1${tail}`, 'host'],
    ['a bracketed non-IPv6 host', `braid://[example]:1${tail}`, 'host'],
    ['an unclosed bracket', `braid://[::1:1${tail}`, 'host'],
    ['no port', `braid://h${tail}`, 'port'],
    ['port 0', `braid://h:0${tail}`, 'port'],
    ['port 65536', `braid://h:65536${tail}`, 'port'],
    ['a non-numeric port', `braid://h:44a${tail}`, 'port'],
    ['no fragment', `braid://h:1`, 'fingerprint'],
    ['a short fingerprint', `braid://h:1#${FP.slice(2)}?key=${KEY_ID}.${KEY_TEXT}`, 'fingerprint'],
    [
      'a non-hex fingerprint',
      `braid://h:1#${'zz'.repeat(32)}?key=${KEY_ID}.${KEY_TEXT}`,
      'fingerprint',
    ],
    [
      'a fingerprint with colons',
      `braid://h:1#${'a1:'.repeat(31)}a1?key=${KEY_ID}.${KEY_TEXT}`,
      'fingerprint',
    ],
    ['no key parameter', `braid://h:1#${FP}`, 'keyId'],
    ['a short key id', `braid://h:1#${FP}?key=0123.${KEY_TEXT}`, 'keyId'],
    ['a non-hex key id', `braid://h:1#${FP}?key=0123456789abcdeg.${KEY_TEXT}`, 'keyId'],
    ['no key after the key id', `braid://h:1#${FP}?key=${KEY_ID}`, 'key'],
    [
      'a 31-byte key',
      `braid://h:1#${FP}?key=${KEY_ID}.${Buffer.alloc(31).toString('base64url')}`,
      'key',
    ],
    [
      'a 33-byte key',
      `braid://h:1#${FP}?key=${KEY_ID}.${Buffer.alloc(33).toString('base64url')}`,
      'key',
    ],
    [
      'a key in standard base64 with padding',
      `braid://h:1#${FP}?key=${KEY_ID}.${key.toString('base64')}`,
      'key',
    ],
    [
      'a key with a non-canonical last character',
      `braid://h:1#${FP}?key=${KEY_ID}.${KEY_TEXT.slice(0, -1)}d`,
      'key',
    ],
  ])('names the field for %s', (_, text, field) => {
    const got = failure(text);
    expect(got.code).toBe('BRAID_ERR_BAD_INVITE');
    expect(got.field).toBe(field);
  });

  it('never puts the key itself in the error', () => {
    const secret = Buffer.alloc(31, 0xab).toString('base64url');
    const got = failure(`braid://h:1#${FP}?key=${KEY_ID}.${secret}`);
    expect(got.field).toBe('key');
    expect(got.message).not.toContain(secret);
  });

  it('refuses to format an invite with a bad field', () => {
    const good: Invite = { host: 'h', port: 1, fingerprint: FP, keyId: KEY_ID, key };
    const cases: Array<[Partial<Invite>, InviteField]> = [
      [{ host: 'bad host' }, 'host'],
      [{ port: 70000 }, 'port'],
      [{ fingerprint: 'abc' }, 'fingerprint'],
      [{ keyId: 'xyz' }, 'keyId'],
      [{ key: Buffer.alloc(16) }, 'key'],
    ];
    for (const [patch, field] of cases) {
      expect(() => formatInvite({ ...good, ...patch })).toThrow(
        expect.objectContaining({ code: 'BRAID_ERR_BAD_INVITE', field }),
      );
    }
  });
});
