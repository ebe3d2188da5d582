/**
 * Invite strings (DESIGN §3.1): everything a client needs to reach and trust a relay,
 * in one line that `braid relay` prints:
 *
 *   braid://host:port#<fingerprint>?key=<keyId>.<key>
 *
 * `fingerprint` pins the relay's certificate (64 lowercase hex, SHA-256 of its DER),
 * `keyId` names the client key (16 hex), `key` is the 32-byte client key in base64url
 * without padding (RFC 4648 §5). IPv6 hosts are written in brackets (RFC 3986 §3.2.2).
 * The secret part sits after '#' so that a tool treating the invite as a URL would not
 * send it anywhere.
 */
import { isIPv6 } from 'node:net';
import { BraidError } from '../util/errors.js';

export interface Invite {
  host: string;
  port: number;
  fingerprint: string;
  keyId: string;
  key: Buffer;
}

export type InviteField = 'scheme' | 'host' | 'port' | 'fingerprint' | 'keyId' | 'key';

/** BRAID_ERR_BAD_INVITE with the field that is wrong; the key's value is never included. */
export class InviteError extends BraidError {
  readonly field: InviteField;
  constructor(field: InviteField, message: string, value?: unknown) {
    // Whatever part of a damaged invite is shown, the key after "key=" never is.
    const shown = typeof value === 'string' ? value.replace(/key=.*$/s, 'key=<hidden>') : value;
    super('BRAID_ERR_BAD_INVITE', `invite ${field}: ${message}`, { value: shown });
    this.name = 'InviteError';
    this.field = field;
  }
}

const SCHEME = 'braid://';
const KEY_LENGTH = 32;
const KEY_ID_LENGTH = 8;
const FINGERPRINT_RE = /^[0-9a-f]{64}$/i;
const KEY_ID_RE = /^[0-9a-f]{16}$/i;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;
// RFC 1123 host names and dotted IPv4; the label rules are checked separately.
const HOSTNAME_RE = /^[A-Za-z0-9.-]+$/;
const PORT_RE = /^[0-9]{1,5}$/;

function checkHost(host: string, bracketed: boolean): string {
  if (bracketed || host.includes(':')) {
    if (!isIPv6(host)) throw new InviteError('host', 'not an IPv6 address', host);
    return host.toLowerCase();
  }
  const labels = host.split('.');
  if (
    host.length === 0 ||
    host.length > 253 ||
    !HOSTNAME_RE.test(host) ||
    labels.some((l) => l.length === 0 || l.length > 63 || l.startsWith('-') || l.endsWith('-'))
  ) {
    throw new InviteError('host', 'not a host name or IP address', host);
  }
  return host.toLowerCase();
}

function checkPort(port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InviteError('port', 'must be 1 to 65535', port);
  }
  return port;
}

function checkFingerprint(fingerprint: string): string {
  if (!FINGERPRINT_RE.test(fingerprint)) {
    // Longer than a fingerprint: the '?' was lost and the key follows; do not echo it.
    const shown = fingerprint.length <= 64 ? fingerprint : `${fingerprint.length} characters`;
    throw new InviteError('fingerprint', 'must be 64 hex characters', shown);
  }
  return fingerprint.toLowerCase();
}

function checkKeyId(keyId: string): string {
  if (!KEY_ID_RE.test(keyId)) {
    // A long one is likely the key pasted without its id: say how long, not what.
    const shown = keyId.length <= KEY_ID_LENGTH * 2 ? keyId : `${keyId.length} characters`;
    throw new InviteError('keyId', `must be ${KEY_ID_LENGTH * 2} hex characters`, shown);
  }
  return keyId.toLowerCase();
}

function checkKey(key: Uint8Array): Buffer {
  if (key.length !== KEY_LENGTH) {
    throw new InviteError('key', `must be ${KEY_LENGTH} bytes`, `${key.length} bytes`);
  }
  return Buffer.from(key);
}

export function formatInvite(invite: Invite): string {
  const host = checkHost(invite.host, false);
  const port = checkPort(invite.port);
  const fingerprint = checkFingerprint(invite.fingerprint);
  const keyId = checkKeyId(invite.keyId);
  const key = checkKey(invite.key);
  const authority = isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
  return `${SCHEME}${authority}#${fingerprint}?key=${keyId}.${key.toString('base64url')}`;
}

/** Parses an invite; throws InviteError (BRAID_ERR_BAD_INVITE) naming the first bad field. */
export function parseInvite(text: string): Invite {
  // Invites are pasted from terminals and chat; surrounding whitespace is not part of them.
  const s = text.trim();
  if (s.slice(0, SCHEME.length).toLowerCase() !== SCHEME) {
    throw new InviteError('scheme', `must start with ${SCHEME}`, s.slice(0, SCHEME.length));
  }
  const hash = s.indexOf('#', SCHEME.length);
  // The authority also ends at '?': with the '#' lost in a paste, what follows is the
  // key, and an error about the host or port would otherwise carry it into logs.
  const query = s.indexOf('?', SCHEME.length);
  const authorityEnd = Math.min(hash < 0 ? s.length : hash, query < 0 ? s.length : query);
  const authority = s.slice(SCHEME.length, authorityEnd);

  let hostText: string;
  let portText: string;
  let bracketed = false;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw new InviteError('host', 'IPv6 address without closing bracket', authority);
    hostText = authority.slice(1, close);
    bracketed = true;
    const after = authority.slice(close + 1);
    if (!after.startsWith(':')) throw new InviteError('port', 'missing after host', authority);
    portText = after.slice(1);
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon < 0) throw new InviteError('port', 'missing after host', authority);
    hostText = authority.slice(0, colon);
    portText = authority.slice(colon + 1);
    if (hostText.includes(':')) {
      throw new InviteError('host', 'IPv6 addresses must be in brackets', hostText);
    }
  }
  const host = checkHost(hostText, bracketed);
  if (!PORT_RE.test(portText)) throw new InviteError('port', 'must be 1 to 65535', portText);
  const port = checkPort(Number(portText));

  if (hash < 0 || hash > authorityEnd) throw new InviteError('fingerprint', 'missing after #', '');
  const fragment = s.slice(hash + 1);
  const keyAt = fragment.indexOf('?');
  const fingerprint = checkFingerprint(keyAt < 0 ? fragment : fragment.slice(0, keyAt));
  if (keyAt < 0 || !fragment.startsWith('key=', keyAt + 1)) {
    throw new InviteError('keyId', 'missing ?key=<keyId>.<key>', undefined);
  }
  const credential = fragment.slice(keyAt + 1 + 'key='.length);
  const dot = credential.indexOf('.');
  const keyId = checkKeyId(dot < 0 ? credential : credential.slice(0, dot));
  if (dot < 0) throw new InviteError('key', 'missing after the key id', undefined);
  const keyText = credential.slice(dot + 1);
  if (!BASE64URL_RE.test(keyText)) {
    throw new InviteError('key', 'not base64url', `${keyText.length} characters`);
  }
  const key = Buffer.from(keyText, 'base64url');
  // Reject non-canonical encodings too (e.g. stray trailing bits), so one key has one invite.
  if (key.length !== KEY_LENGTH || key.toString('base64url') !== keyText) {
    throw new InviteError('key', `must be ${KEY_LENGTH} bytes in base64url`, `${key.length} bytes`);
  }
  return { host, port, fingerprint, keyId, key };
}
