import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { BraidClient, type ClientOptions } from '../api/client.js';
import type { TransportKind } from '../wire/frame.js';
import type { Config } from '../session/config.js';
import type { SinkReport } from '../relay/relay.js';
import { BraidError } from '../util/errors.js';
import type { Logger } from '../util/log.js';

export interface TransferOptions {
  invite: string;
  via: string[];
  transports: TransportKind[];
  bytes: number;
  config?: Partial<Config>;
  logger?: Logger;
  wrapSubflow?: ClientOptions['wrapSubflow'];
  /** Called once the stream is open, with the client and a reader of bytes written so far. */
  onStart?: (client: BraidClient, written: () => number) => void;
}

export interface PathResult {
  id: number;
  kind: TransportKind;
  local: string;
  remote: string;
  state: string;
  bytes: number;
  share: number;
  mbps: number;
  srttMs: number;
  lostPackets: number;
}

export interface TransferResult {
  bytes: number;
  seconds: number;
  mbps: number;
  sha256: string;
  verified: boolean;
  paths: PathResult[];
}

/**
 * `braid send`: streams `bytes` of pseudo-random data to the relay's sink over every
 * path and checks the SHA-256 the sink reports. Goodput counts bytes the sink
 * received, over the time from the first write to the sink's report.
 */
export async function runTransfer(options: TransferOptions): Promise<TransferResult> {
  const connected = await BraidClient.connect({
    invite: options.invite,
    via: options.via,
    transports: options.transports,
    config: options.config,
    logger: options.logger,
    wrapSubflow: options.wrapSubflow,
  });
  if (connected.kind === 'legacy') {
    throw new BraidError('BRAID_ERR_HANDSHAKE', 'the peer is not a Braid relay', {
      value: connected.reason,
    });
  }
  const client = connected.client;
  try {
    const stream = client.openStream({ target: 'sink' });
    const replyChunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => replyChunks.push(chunk));
    // Done when the sink's report arrived ('end') and the peer acknowledged all we sent ('finish').
    const ended = Promise.all([once(stream, 'end'), once(stream, 'finish')]);
    const hash = createHash('sha256');
    // One random block, varied per write so that a misplaced block changes the hash.
    const block = randomBytes(256 * 1024);
    const started = performance.now();
    let sent = 0;
    let counter = 0;
    options.onStart?.(client, () => sent);
    while (sent < options.bytes) {
      const n = Math.min(block.length, options.bytes - sent);
      const chunk = Buffer.allocUnsafe(n);
      block.copy(chunk, 0, 0, n);
      chunk.writeUInt32BE(counter++ >>> 0, 0);
      hash.update(chunk);
      sent += n;
      if (!stream.write(chunk)) await once(stream, 'drain');
    }
    stream.end();
    await ended;
    const seconds = (performance.now() - started) / 1000;
    const report = JSON.parse(Buffer.concat(replyChunks).toString('utf8')) as SinkReport;
    const sha256 = hash.digest('hex');
    const totalAcked = client.association
      .pathSummary()
      .reduce((sum, p) => sum + p.streamBytesAcked, 0);
    const paths = client.association.pathSummary().map((p) => ({
      id: p.id,
      kind: p.kind,
      local: p.local,
      remote: p.remote,
      state: p.state,
      bytes: p.streamBytesAcked,
      share: totalAcked === 0 ? 0 : p.streamBytesAcked / totalAcked,
      mbps: (p.streamBytesAcked * 8) / seconds / 1e6,
      srttMs: p.srttMs,
      lostPackets: p.lost,
    }));
    return {
      bytes: report.bytes,
      seconds,
      mbps: (report.bytes * 8) / seconds / 1e6,
      sha256,
      verified: report.sha256 === sha256 && report.bytes === options.bytes,
      paths,
    };
  } finally {
    client.close();
  }
}

export function formatTransfer(result: TransferResult): string {
  const lines = [
    'path  transport  local            remote                 state    share    Mbit/s   srtt ms  lost pkts',
  ];
  for (const p of result.paths) {
    lines.push(
      [
        String(p.id).padEnd(5),
        p.kind.padEnd(10),
        p.local.padEnd(16),
        p.remote.padEnd(22),
        p.state.padEnd(8),
        `${(p.share * 100).toFixed(1)}%`.padStart(6),
        p.mbps.toFixed(1).padStart(9),
        p.srttMs.toFixed(2).padStart(9),
        String(p.lostPackets).padStart(10),
      ].join(' '),
    );
  }
  lines.push(
    `total ${(result.bytes / 1e6).toFixed(1)} MB in ${result.seconds.toFixed(2)} s = ${result.mbps.toFixed(1)} Mbit/s goodput; SHA-256 ${result.verified ? 'matches' : 'MISMATCH'} (${result.sha256.slice(0, 16)}…)`,
  );
  return lines.join('\n');
}

/** Parses "200M", "1.5G", "64k", "1000" into bytes (powers of 1000, as network rates). */
export function parseSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmMgG]?)[bB]?$/.exec(text.trim());
  if (m === null) throw new BraidError('BRAID_ERR_USAGE', 'not a size (try 200M)', { value: text });
  const unit = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * unit);
}
