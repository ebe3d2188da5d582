import type { TransportKind } from '../wire/frame.js';

/**
 * What the engine tells the UI and the logs about uplinks and paths (issue: uplinks,
 * item 6). Every event has a kind, a wall-clock time and the uplink's local address.
 */
export type EngineEvent =
  | { type: 'uplink-up'; at: number; local: string; name?: string }
  | { type: 'uplink-down'; at: number; local: string; name?: string; reason: string }
  | {
      type: 'path-joined';
      at: number;
      local: string;
      pathId: number;
      remote: string;
      transport: TransportKind;
    }
  | { type: 'path-failed'; at: number; local: string; pathId: number; reason: string }
  | { type: 'path-suspect'; at: number; local: string; pathId: number }
  | { type: 'path-recovered'; at: number; local: string; pathId: number }
  | {
      /** A path's outstanding data moved to the other paths. */
      type: 'failover';
      at: number;
      local: string;
      pathId: number;
      reinjectedBytes: number;
      reason: string;
    }
  | {
      /** A stalled TCP path was replaced by a fresh connection from the same uplink. */
      type: 'path-replaced';
      at: number;
      local: string;
      oldPathId: number;
      newPathId: number;
    }
  | { type: 'cap-warning'; at: number; local: string; usedBytes: number; capBytes: number }
  | { type: 'cap-reached'; at: number; local: string; usedBytes: number; capBytes: number };

export type EngineEventType = EngineEvent['type'];
