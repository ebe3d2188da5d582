import { create } from 'zustand';
import {
  HISTORY_SECONDS,
  type AppView,
  type Aggregate,
  type AssociationStatus,
  type EngineEvent,
  type PathView,
  type SessionView,
  type SettingsView,
  type Snapshot,
  type Update,
  type UplinkView,
} from '../../core/host/contract';
import type { ConnectionState } from './ws-transport';
import { SeriesRing } from './series-ring';

/** Ring capacity: five minutes at the engine's fastest rate (5 Hz) plus slack. */
const RING_CAPACITY = HISTORY_SECONDS * 5 + 10;
const MAX_EVENTS = 100;

export interface BraidState {
  connection: ConnectionState;
  loaded: boolean;
  mode: 'demo' | 'live';
  association: AssociationStatus;
  uplinkIds: string[];
  uplinks: Record<string, UplinkView>;
  paths: PathView[];
  sessions: SessionView[];
  apps: AppView[];
  aggregate: Aggregate;
  settings: SettingsView | null;
  warnings: string[];
  events: EngineEvent[];
  /** Bumped on every update; chart components subscribe to it and read their ring. */
  tick: number;
  lastSeq: number;
  applySnapshot(s: Snapshot): void;
  applyUpdate(u: Update): void;
  setConnection(c: ConnectionState): void;
}

/** Rings live beside the store, not in it: they are mutated in place, never copied. */
const rings = new Map<string, SeriesRing>();

/**
 * The aggregate chart (recharts) gets five minutes at one point a second, the newest
 * second live: recharts' cost grows with points (it measures each path's length), and
 * 300 are plenty for a chart a few hundred pixels wide.
 */
export const AGGREGATE_BUCKET_MS = 1000;
const aggregate = new SeriesRing(HISTORY_SECONDS + 2);
export function aggregateRing(): SeriesRing {
  return aggregate;
}

export function ringOf(uplinkId: string): SeriesRing {
  let r = rings.get(uplinkId);
  if (r === undefined) rings.set(uplinkId, (r = new SeriesRing(RING_CAPACITY)));
  return r;
}

function live(u: Update): Partial<BraidState> {
  const uplinks: Record<string, UplinkView> = {};
  for (const x of u.uplinks) uplinks[x.id] = x;
  return {
    mode: u.mode,
    association: u.association,
    uplinkIds: u.uplinks.map((x) => x.id),
    uplinks,
    paths: u.paths,
    sessions: u.sessions,
    apps: u.apps,
    aggregate: u.aggregate,
    settings: u.settings,
    warnings: u.warnings,
    lastSeq: u.seq,
  };
}

export const useBraid = create<BraidState>()((set, get) => ({
  connection: 'connecting',
  loaded: false,
  mode: 'demo',
  association: 'none',
  uplinkIds: [],
  uplinks: {},
  paths: [],
  sessions: [],
  apps: [],
  aggregate: { upBps: 0, downBps: 0, uplinksUp: 0, uplinksTotal: 0 },
  settings: null,
  warnings: [],
  events: [],
  tick: 0,
  lastSeq: 0,
  applySnapshot(s) {
    for (const r of rings.values()) r.clear();
    aggregate.clear();
    for (const [id, samples] of Object.entries(s.history)) {
      if (id === '*') {
        for (const sample of samples) aggregate.pushBucketed(sample, AGGREGATE_BUCKET_MS);
        continue;
      }
      const ring = ringOf(id);
      for (const sample of samples) ring.push(sample);
    }
    set({ ...live(s), events: s.events.slice(-MAX_EVENTS), loaded: true, tick: get().tick + 1 });
  },
  applyUpdate(u) {
    const state = get();
    // Updates older than the snapshot are already in it.
    if (!state.loaded || u.seq <= state.lastSeq) return;
    for (const x of u.uplinks) {
      ringOf(x.id).push({
        t: u.at,
        latencyMs: x.latencyMs,
        jitterMs: x.jitterMs,
        lossRate: x.lossRate,
        upBps: x.upBps,
        downBps: x.downBps,
      });
    }
    aggregate.pushBucketed(
      {
        t: u.at,
        latencyMs: null,
        jitterMs: null,
        lossRate: null,
        upBps: u.aggregate.upBps,
        downBps: u.aggregate.downBps,
      },
      AGGREGATE_BUCKET_MS,
    );
    const events =
      u.events.length === 0 ? state.events : [...state.events, ...u.events].slice(-MAX_EVENTS);
    set({ ...live(u), events, tick: state.tick + 1 });
  },
  setConnection(c) {
    set({ connection: c });
  },
}));

// Selectors: components read through these, so each re-renders only for its own slice.
export const selectUplink =
  (id: string) =>
  (s: BraidState): UplinkView | undefined =>
    s.uplinks[id];
export const selectUplinkIds = (s: BraidState): string[] => s.uplinkIds;
export const selectApps = (s: BraidState): AppView[] => s.apps;
export const selectSessions = (s: BraidState): SessionView[] => s.sessions;
export const selectSettings = (s: BraidState): SettingsView | null => s.settings;
export const selectAggregate = (s: BraidState): Aggregate => s.aggregate;
export const selectWarnings = (s: BraidState): string[] => s.warnings;
export const selectTick = (s: BraidState): number => s.tick;
export const selectConnection = (s: BraidState): ConnectionState => s.connection;
