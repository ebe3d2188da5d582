import type { DirectionParams, DirectionStats, Trace } from './link-model.js';

/**
 * The forwarder's control protocol: one JSON object per line on its stdin, one
 * reply per line on its stdout. Shared by the forwarder process and LinkHandle.
 */

/** Which way a command applies: client to server (upload), server to client, or both. */
export type LinkDir = 'c2s' | 's2c' | 'both';

export interface ForwarderConfig {
  /** TUN device names to create in the forwarder's namespace (at most 15 bytes). */
  clientTun: string;
  serverTun: string;
  c2s: Partial<DirectionParams>;
  s2c: Partial<DirectionParams>;
  /** Seed of the loss and jitter random source; each direction derives its own. */
  seed: number;
}

export type ControlCommand =
  | { id: number; cmd: 'set'; dir: LinkDir; params: Partial<DirectionParams> }
  | { id: number; cmd: 'trace'; dir: LinkDir; trace: Trace | null }
  | { id: number; cmd: 'stats'; reset?: boolean }
  | { id: number; cmd: 'exit' };

export interface LinkStats {
  /** Forwarder clock (ms) when the stats were taken. */
  atMs: number;
  c2s: DirectionStats;
  s2c: DirectionStats;
  /** Packets the kernel refused on write. */
  writeErrors: number;
  /** Wake-ups of the forwarder loop, for judging its overhead. */
  wakeups: number;
}

export type ControlReply =
  | { id: number; ok: true; stats?: LinkStats }
  | { id: number; ok: false; code: string; error: string };

/** First line the forwarder prints once both TUN devices exist. */
export interface ReadyEvent {
  event: 'ready';
  pid: number;
}
