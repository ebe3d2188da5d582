/**
 * The first bytes a relay sends on a forwarding session ("tcp:host:port" or "udp"):
 * the outcome of its connect, so that the local proxy can answer the SOCKS request
 * only once it is known (RFC 1928 §6 wants the reply to say whether it worked).
 *
 *   MARKER(0xB5) STATUS(1) LENGTH(1) TEXT(LENGTH, UTF-8)
 *
 * STATUS is a SOCKS5 reply code (0 success, 2 not allowed, 3 network unreachable,
 * 4 host unreachable, 5 refused, 6 TTL expired/timeout, 1 anything else). TEXT is
 * the relay's bound "address:port" on success, the reason otherwise. On failure the
 * relay ends the session after the reply.
 */
import type { Readable } from 'node:stream';
import { BraidError } from '../util/errors.js';

export const FORWARD_REPLY_MARKER = 0xb5;
/** Codes as in RFC 1928 §6; kept as numbers so the relay needs no SOCKS import. */
export const ForwardStatus = {
  ok: 0,
  generalFailure: 1,
  notAllowed: 2,
  networkUnreachable: 3,
  hostUnreachable: 4,
  refused: 5,
  timeout: 6,
} as const;
export type ForwardStatusCode = (typeof ForwardStatus)[keyof typeof ForwardStatus];

export interface ForwardReply {
  status: ForwardStatusCode;
  /** Bound "address:port" on success, the reason otherwise. */
  text: string;
}

const MAX_TEXT = 255;

export function encodeForwardReply(reply: ForwardReply): Buffer {
  let text = Buffer.from(reply.text, 'utf8');
  if (text.length > MAX_TEXT) text = text.subarray(0, MAX_TEXT);
  const out = Buffer.allocUnsafe(3 + text.length);
  out[0] = FORWARD_REPLY_MARKER;
  out[1] = reply.status;
  out[2] = text.length;
  text.copy(out, 3);
  return out;
}

/**
 * Incremental decoder: `push` returns undefined until the reply is whole, then the
 * reply and the bytes after it (the start of the forwarded data).
 */
export class ForwardReplyDecoder {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): { reply: ForwardReply; rest: Buffer } | undefined {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const b = this.buf;
    if (b.length >= 1 && b[0] !== FORWARD_REPLY_MARKER)
      throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', 'relay reply has no marker', {
        value: b.subarray(0, 16),
      });
    if (b.length >= 2 && b[1]! > ForwardStatus.timeout)
      throw new BraidError('BRAID_ERR_WIRE_BAD_VALUE', 'relay reply status unknown', {
        value: b[1],
      });
    if (b.length < 3 || b.length < 3 + b[2]!) return undefined;
    const end = 3 + b[2]!;
    return {
      reply: { status: b[1] as ForwardStatusCode, text: b.subarray(3, end).toString('utf8') },
      rest: b.subarray(end),
    };
  }
}

/**
 * Reads the reply off the head of `stream` and puts any bytes after it back, so the
 * stream then carries only forwarded data. Rejects if the stream ends or fails first,
 * or after `timeoutMs`.
 */
export function readForwardReply(stream: Readable, timeoutMs: number): Promise<ForwardReply> {
  return new Promise((resolve, reject) => {
    const decoder = new ForwardReplyDecoder();
    const cleanup = (): void => {
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      let done: ReturnType<ForwardReplyDecoder['push']>;
      try {
        done = decoder.push(chunk);
      } catch (err) {
        cleanup();
        reject(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (done === undefined) return;
      cleanup();
      stream.pause();
      if (done.rest.length > 0) stream.unshift(done.rest);
      resolve(done.reply);
    };
    const onEnd = (): void => {
      cleanup();
      reject(new BraidError('BRAID_ERR_RELAY_REFUSED', 'relay ended the session without a reply'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(
        new BraidError('BRAID_ERR_RELAY_REFUSED', 'relay did not reply in time', {
          value: timeoutMs,
        }),
      );
    }, timeoutMs);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('close', onEnd);
    stream.on('error', onError);
  });
}
