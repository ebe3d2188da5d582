/**
 * One base error for all of Braid. Every error has a stable `code` (tests assert the
 * code, never the message, as ws and undici do), the offending value where there is
 * one, and the peer or path it concerns. Protocol errors also carry the close code
 * that is sent to the peer in an ERROR frame.
 */
export const ErrorCodes = {
  // wire
  BRAID_ERR_WIRE_TRUNCATED: 1,
  BRAID_ERR_WIRE_UNKNOWN_FRAME: 2,
  BRAID_ERR_WIRE_BAD_VALUE: 3,
  BRAID_ERR_WIRE_TOO_LARGE: 4,
  BRAID_ERR_WIRE_VERSION: 5,
  // handshake and keys
  BRAID_ERR_AUTH_FAILED: 10,
  BRAID_ERR_FINGERPRINT: 11,
  BRAID_ERR_HANDSHAKE_TIMEOUT: 12,
  BRAID_ERR_HANDSHAKE: 13,
  BRAID_ERR_BAD_INVITE: 14,
  BRAID_ERR_JOIN_REJECTED: 15,
  // packet protection
  BRAID_ERR_DECRYPT: 20,
  BRAID_ERR_REPLAY: 21,
  // sessions and flow control
  BRAID_ERR_FLOW_CONTROL: 30,
  BRAID_ERR_SESSION_RESET: 31,
  BRAID_ERR_SESSION_STATE: 32,
  BRAID_ERR_REORDER_OVERFLOW: 33,
  BRAID_ERR_ASSOCIATION_CLOSED: 34,
  BRAID_ERR_NO_PATH: 35,
  /** The peer did not complete Braid's TLS handshake: not Braid, or an attacker in the way; no plain fallback unless allowLegacy, and none for semantics that need Braid. */
  BRAID_ERR_LEGACY_PEER: 36,
  // transports
  BRAID_ERR_TRANSPORT: 40,
  BRAID_ERR_PATH_FAILED: 41,
  // local proxy and relay forwarding
  /** A SOCKS5 client sent something malformed or unsupported; carries the SOCKS reply code. */
  BRAID_ERR_SOCKS: 60,
  /** The relay refused to forward a session (policy, limit, or the destination failed). */
  BRAID_ERR_RELAY_REFUSED: 61,
  /** A per-app rule or rules file is invalid. */
  BRAID_ERR_RULES: 62,
  // configuration and usage
  BRAID_ERR_CONFIG: 50,
  BRAID_ERR_USAGE: 51,
  BRAID_ERR_INTERNAL: 99,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface ErrorContext {
  /** The offending value, if any (printed in the message, kept for tests). */
  value?: unknown;
  /** Peer address or association id the error concerns. */
  peer?: string;
  /** Path id or local address the error concerns. */
  path?: string | number;
  cause?: unknown;
}

export class BraidError extends Error {
  readonly code: ErrorCode;
  readonly value: unknown;
  readonly peer: string | undefined;
  readonly path: string | number | undefined;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(
      message + describe(context),
      context.cause === undefined ? undefined : { cause: context.cause },
    );
    this.name = 'BraidError';
    this.code = code;
    this.value = context.value;
    this.peer = context.peer;
    this.path = context.path;
  }

  /** The numeric close code sent on the wire in an ERROR frame. */
  get wireCode(): number {
    return ErrorCodes[this.code];
  }
}

function describe(context: ErrorContext): string {
  const parts: string[] = [];
  if (context.peer !== undefined) parts.push(`peer ${context.peer}`);
  if (context.path !== undefined) parts.push(`path ${String(context.path)}`);
  if (context.value !== undefined) parts.push(`value ${preview(context.value)}`);
  return parts.length === 0 ? '' : ` (${parts.join(', ')})`;
}

function preview(value: unknown): string {
  if (value instanceof Uint8Array) {
    const hex = Buffer.from(value.subarray(0, 16)).toString('hex');
    return value.length > 16 ? `0x${hex}… (${value.length} bytes)` : `0x${hex}`;
  }
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 80 ? text.slice(0, 77) + '...' : text;
}

/** Name of a wire close code, for logs of ERROR frames received from a peer. */
export function codeName(wireCode: number): ErrorCode | 'UNKNOWN' {
  for (const [name, value] of Object.entries(ErrorCodes)) {
    if (value === wireCode) return name as ErrorCode;
  }
  return 'UNKNOWN';
}

export function isBraidError(err: unknown, code?: ErrorCode): err is BraidError {
  return err instanceof BraidError && (code === undefined || err.code === code);
}
