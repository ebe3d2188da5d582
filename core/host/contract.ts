/**
 * The one contract between the engine (core/host) and the dashboard (renderer/),
 * DESIGN §2 and STYLE §2. Every call is declared once in `ipcSchema`, in the manner of
 * Mullvad's `src/shared/ipc-schema.ts`: `invoke<Request, Response>(validator)` for
 * commands, `notify<Payload>()` for what the engine pushes. Both sides are derived by
 * mapped types (`BraidApi` for the renderer, `Handlers` for the host), so no channel
 * name is written by hand, and an invoke answers `{ type: 'success', value }` or
 * `{ type: 'error', message }` instead of rejecting raw.
 *
 * This module has no imports and touches no Node or DOM API: the renderer's DOM-only
 * build, Electron's preload and the headless server all import it. The runtime part is
 * limited to the argument validators and the two derivation helpers.
 */

// ------------------------------------------------------------------ vocabulary

/** Delivery semantics of a session (DESIGN §3 table); equal to core/wire's `Semantics`. */
export type Semantics =
  'unreliable-unordered' | 'reliable-unordered' | 'unreliable-ordered' | 'reliable-ordered';
export const SEMANTICS_LIST: readonly Semantics[] = [
  'unreliable-unordered',
  'reliable-unordered',
  'unreliable-ordered',
  'reliable-ordered',
];
/** Performance objectives (paper §III-A); equal to core/wire's `Objective`. */
export type Objective = 'throughput' | 'latency' | 'jitter' | 'loss';
export const OBJECTIVE_LIST: readonly Objective[] = ['throughput', 'latency', 'jitter', 'loss'];

/** DESIGN §1: how an uplink may be used. */
export type UplinkRole = 'primary' | 'secondary' | 'backup' | 'never';
export const UPLINK_ROLES: readonly UplinkRole[] = ['primary', 'secondary', 'backup', 'never'];

/** Same names as core/iface's `UplinkKind`. */
export type UplinkKind = 'wifi' | 'ethernet' | 'cellular' | 'virtual' | 'loopback' | 'other';

/**
 * What the dashboard shows for an uplink.
 * - up: a path over it is active;
 * - degraded: its path is suspect or losing more than the degraded threshold;
 * - down: the interface is down or no path over it is alive;
 * - standby: role `backup`, kept closed while a primary or secondary uplink works;
 * - disabled: role `never`, so Braid does not use it.
 */
export type UplinkState = 'up' | 'degraded' | 'down' | 'standby' | 'disabled';

/** core/session's `PathLifecycle`, shown under the same names (STYLE §4). */
export type PathLifecycle = 'joining' | 'active' | 'suspect' | 'failed' | 'closed';

/** The association to the relay, as core/session names it, plus the two states before it. */
export type AssociationStatus = 'none' | 'connecting' | 'active' | 'orphaned' | 'closed';

/** What an app is (core/proxy/rules.ts guesses it from the executable); sets the defaults. */
export type AppKind = 'browser' | 'game' | 'call' | 'streaming' | 'sync' | 'other';
export const APP_KINDS: readonly AppKind[] = [
  'browser',
  'game',
  'call',
  'streaming',
  'sync',
  'other',
];

/**
 * A per-app rule: the shape of core/proxy/rules.ts's `AppRule` (core/host checks at
 * compile time that the two stay equal).
 * `lossVsThroughput`: 0 = favour throughput only, 1 = favour low loss only;
 * `latencyVsThroughput`: 0 = favour throughput only, 1 = favour low latency only.
 */
export interface AppRule {
  appId: string;
  name: string;
  kind: AppKind;
  /** Semantics of the app's UDP traffic; its TCP traffic is always reliable-ordered. */
  udpSemantics: Semantics;
  /** All four objectives, most important first (paper §III-A static priority order). */
  priorities: Objective[];
  lossVsThroughput: number;
  latencyVsThroughput: number;
  bypass: boolean;
}

// ------------------------------------------------------------------ snapshot

export interface UplinkView {
  /** Stable id (the interface name, or the demo's uplink name). */
  id: string;
  name: string;
  kind: UplinkKind;
  /** Local address the paths are bound to; null when the interface has none. */
  address: string | null;
  transport: 'udp' | 'tcp' | null;
  state: UplinkState;
  role: UplinkRole;
  /** Smoothed RTT of its path (ms); null before the first sample. */
  latencyMs: number | null;
  /** RFC 3550 §6.4.1 interarrival jitter over successive RTT samples (ms). */
  jitterMs: number | null;
  /** Packets declared lost / sent over the last window, 0..1. */
  lossRate: number | null;
  /** Bytes per second on the wire, each direction. */
  upBps: number;
  downBps: number;
  /** Bytes sent + received since the counter was reset (a month, for the cap). */
  usedBytes: number;
  /** Monthly data cap (bytes) of a metered link; null = none. */
  capBytes: number | null;
  pathIds: number[];
}

export interface PathView {
  id: number;
  uplinkId: string;
  transport: 'udp' | 'tcp';
  state: PathLifecycle;
  local: string;
  remote: string;
  srttMs: number;
  cwnd: number;
  /** Delivery rate estimate (bytes/s). */
  deliveryRate: number;
  /** The path's congestion controller ('auto' shows what it chose); UDP paths only. */
  controller: 'newreno' | 'cubic' | 'bbr';
  /** Its increase is coupled with the association's other UDP paths (LIA, RFC 6356). */
  coupled: boolean;
  /** Paths whose bottleneck the association measured this path to share (ids). */
  sharedBottleneckWith: number[];
}

export interface SessionSplit {
  pathId: number;
  uplinkId: string;
  /** Share of this session's bytes sent on the path over the last window, 0..1. */
  share: number;
}

export interface SessionView {
  id: number;
  appId: string | null;
  appName: string;
  target: string;
  semantics: Semantics;
  priorities: Objective[];
  state: string;
  /** Payload bytes sent so far, all paths. */
  bytes: number;
  /** Bytes per second sent over the last window. */
  rateBps: number;
  split: SessionSplit[];
  /**
   * Of `bytes`, stream bytes sent again on the fastest path while their first copy was
   * still in flight on a slower one: at the end of a stream or burst, and on a prefix
   * stuck behind a slow path. What the striping's latency cost in extra traffic.
   */
  reinjectedBytes: number;
}

/** Where an app's traffic goes now. */
export type AppRoute =
  | { kind: 'association'; sessionId: number }
  | { kind: 'bypass'; uplinkId: string | null }
  | { kind: 'idle' };

export interface AppView {
  rule: AppRule;
  route: AppRoute;
  /** Bytes per second the app sends now, whichever the route. */
  rateBps: number;
  /** One sentence on what the engine does for this app now. */
  doing: string;
}

export interface EngineEvent {
  seq: number;
  /** Wall-clock time, ms since the epoch. */
  at: number;
  level: 'info' | 'warn' | 'error';
  message: string;
}

export interface Aggregate {
  upBps: number;
  downBps: number;
  uplinksUp: number;
  uplinksTotal: number;
}

export interface SettingsView {
  relayInvite: string | null;
  proxyPort: number;
  launchAtLogin: boolean;
  globalBypass: boolean;
  /** Whether this host can honour launchAtLogin (Electron can, the headless server cannot). */
  launchAtLoginSupported: boolean;
}

/** One point of an uplink's history (and of the aggregate, with id '*'). */
export interface Sample {
  /** Wall-clock time, ms since the epoch. */
  t: number;
  latencyMs: number | null;
  jitterMs: number | null;
  lossRate: number | null;
  upBps: number;
  downBps: number;
}

/** What the engine pushes a few times a second. */
export interface Update {
  seq: number;
  at: number;
  mode: 'demo' | 'live';
  association: AssociationStatus;
  uplinks: UplinkView[];
  paths: PathView[];
  sessions: SessionView[];
  apps: AppView[];
  aggregate: Aggregate;
  settings: SettingsView;
  /** Events since the previous update (the snapshot carries the recent ones). */
  events: EngineEvent[];
  /** Problems the user should see (a settings file moved aside, an invite refused). */
  warnings: string[];
}

/** The whole state once, on connect: the latest update plus history and recent events. */
export interface Snapshot extends Update {
  /** Per uplink id, oldest first, up to `HISTORY_SECONDS`. */
  history: Record<string, Sample[]>;
}

/** How much history the engine keeps and the charts show (DESIGN §1: 5 minutes). */
export const HISTORY_SECONDS = 300;

// ------------------------------------------------------------------ validators

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };
export type Validator<T> = (input: unknown, where?: string) => Checked<T>;

const ok = <T>(value: T): Checked<T> => ({ ok: true, value });
const bad = <T>(where: string, what: string): Checked<T> => ({
  ok: false,
  error: `${where || 'argument'} ${what}`,
});

function describeValue(x: unknown): string {
  if (typeof x === 'string') return JSON.stringify(x.length > 40 ? x.slice(0, 40) + '…' : x);
  if (x === null || typeof x !== 'object') return String(x);
  return Array.isArray(x) ? 'an array' : 'an object';
}

/** Small validator combinators; each names the offending field in its error. */
export const v = {
  null(): Validator<null> {
    return (x, w = '') => (x === null || x === undefined ? ok(null) : bad(w, 'must be empty'));
  },
  boolean(): Validator<boolean> {
    return (x, w = '') =>
      typeof x === 'boolean' ? ok(x) : bad(w, `must be true or false, not ${describeValue(x)}`);
  },
  number(min: number, max: number, integer = false): Validator<number> {
    return (x, w = '') =>
      typeof x === 'number' &&
      Number.isFinite(x) &&
      x >= min &&
      x <= max &&
      (!integer || Number.isInteger(x))
        ? ok(x)
        : bad(
            w,
            `must be ${integer ? 'a whole number' : 'a number'} in ${min}..${max}, not ${describeValue(x)}`,
          );
  },
  string(maxLength: number, pattern?: RegExp): Validator<string> {
    return (x, w = '') =>
      typeof x === 'string' && x.length <= maxLength && (pattern === undefined || pattern.test(x))
        ? ok(x)
        : bad(
            w,
            `must be a string of at most ${maxLength} characters${pattern === undefined ? '' : ` matching ${String(pattern)}`}, not ${describeValue(x)}`,
          );
  },
  oneOf<T extends string>(values: readonly T[]): Validator<T> {
    return (x, w = '') =>
      typeof x === 'string' && (values as readonly string[]).includes(x)
        ? ok(x as T)
        : bad(w, `must be one of ${values.join(', ')}, not ${describeValue(x)}`);
  },
  nullable<T>(inner: Validator<T>): Validator<T | null> {
    return (x, w = '') => (x === null ? ok(null) : inner(x, w));
  },
  /** Every member of `values` once, in any order (a ranking). */
  permutation<T extends string>(values: readonly T[]): Validator<T[]> {
    const item = v.oneOf(values);
    return (x, w = '') => {
      if (!Array.isArray(x) || x.length !== values.length)
        return bad(w, `must rank all of ${values.join(', ')}, each once`);
      const out: T[] = [];
      for (let i = 0; i < x.length; i++) {
        const r = item(x[i], `${w}[${i}]`);
        if (!r.ok) return r;
        if (out.includes(r.value)) return bad(`${w}[${i}]`, `repeats ${r.value}`);
        out.push(r.value);
      }
      return ok(out);
    };
  },
  /**
   * An object with exactly these fields; fields marked optional may be absent.
   * Unknown fields are refused, so a typo is an error rather than a no-op.
   */
  object<T extends object>(
    fields: { [K in keyof T]-?: Validator<T[K]> },
    optional: ReadonlyArray<keyof T> = [],
  ): Validator<T> {
    return (x, w = '') => {
      if (typeof x !== 'object' || x === null || Array.isArray(x))
        return bad(w, `must be an object, not ${describeValue(x)}`);
      const input = x as Record<string, unknown>;
      for (const key of Object.keys(input)) {
        if (!(key in fields)) return bad(w ? `${w}.${key}` : key, 'is not a known field');
      }
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(fields) as Array<keyof T & string>) {
        const where = w ? `${w}.${key}` : key;
        if (!(key in input) || input[key] === undefined) {
          if (optional.includes(key)) continue;
          return bad(where, 'is missing');
        }
        const r = (fields[key] as Validator<unknown>)(input[key], where);
        if (!r.ok) return r;
        out[key] = r.value;
      }
      return ok(out as T);
    };
  },
};

const appId = v.string(128, /^[\w.:@/+-]+$/);
const uplinkId = v.string(64, /^[\w.:@-]+$/);

/** Fields of an AppRule a command may change; `appId` names the rule. */
export type AppRulePatch = Pick<AppRule, 'appId'> &
  Partial<Omit<AppRule, 'appId' | 'name' | 'kind'>>;

export const validateAppRulePatch: Validator<AppRulePatch> = v.object<AppRulePatch>(
  {
    appId,
    udpSemantics: v.oneOf(SEMANTICS_LIST),
    priorities: v.permutation(OBJECTIVE_LIST),
    lossVsThroughput: v.number(0, 1),
    latencyVsThroughput: v.number(0, 1),
    bypass: v.boolean(),
  },
  ['udpSemantics', 'priorities', 'lossVsThroughput', 'latencyVsThroughput', 'bypass'],
);

export interface UplinkPatch {
  uplinkId: string;
  role?: UplinkRole;
  capBytes?: number | null;
}
export const validateUplinkPatch: Validator<UplinkPatch> = v.object<UplinkPatch>(
  {
    uplinkId,
    role: v.oneOf(UPLINK_ROLES),
    capBytes: v.nullable(v.number(0, Number.MAX_SAFE_INTEGER, true)),
  },
  ['role', 'capBytes'],
);

export interface BypassRequest {
  /** Absent: the global bypass. */
  appId?: string;
  on: boolean;
}
export const validateBypassRequest: Validator<BypassRequest> = v.object<BypassRequest>(
  { appId, on: v.boolean() },
  ['appId'],
);

export interface RelaySettingsRequest {
  /** A `braid://` invite printed by `braid relay`; null forgets the relay. */
  relayInvite: string | null;
}
export const validateRelaySettings: Validator<RelaySettingsRequest> =
  v.object<RelaySettingsRequest>({
    relayInvite: v.nullable(v.string(1024, /^braid:\/\/\S+$/)),
  });

export interface SettingsPatch {
  proxyPort?: number;
  launchAtLogin?: boolean;
}
export const validateSettingsPatch: Validator<SettingsPatch> = v.object<SettingsPatch>(
  { proxyPort: v.number(1024, 65535, true), launchAtLogin: v.boolean() },
  ['proxyPort', 'launchAtLogin'],
);

// ------------------------------------------------------------------ the schema

export interface InvokeSpec<Req, Res> {
  readonly kind: 'invoke';
  readonly validate: Validator<Req>;
  /** Phantom: carries the response type; never set. */
  readonly response?: Res;
}
export interface NotifySpec<T> {
  readonly kind: 'notify';
  /** Phantom: carries the payload type; never set. */
  readonly payload?: T;
}

function invoke<Req, Res>(validate: Validator<Req>): InvokeSpec<Req, Res> {
  return { kind: 'invoke', validate };
}
function notify<T>(): NotifySpec<T> {
  return { kind: 'notify' };
}

/** Every call between the engine and the UI, once. */
export const ipcSchema = {
  /** The whole state; the renderer calls it once, then follows `update`. */
  getSnapshot: invoke<null, Snapshot>(v.null()),
  setAppRule: invoke<AppRulePatch, AppRule>(validateAppRulePatch),
  setUplink: invoke<UplinkPatch, null>(validateUplinkPatch),
  setBypass: invoke<BypassRequest, null>(validateBypassRequest),
  setRelaySettings: invoke<RelaySettingsRequest, SettingsView>(validateRelaySettings),
  setSettings: invoke<SettingsPatch, SettingsView>(validateSettingsPatch),
  /** Pushed a few times a second. */
  update: notify<Update>(),
};

type Schema = typeof ipcSchema;
export type CallName = keyof Schema;
export type InvokeName = {
  [K in CallName]: Schema[K] extends InvokeSpec<unknown, unknown> ? K : never;
}[CallName];
export type NotifyName = {
  [K in CallName]: Schema[K] extends NotifySpec<unknown> ? K : never;
}[CallName];
export type RequestOf<K extends InvokeName> =
  Schema[K] extends InvokeSpec<infer Q, unknown> ? Q : never;
export type ResponseOf<K extends InvokeName> =
  Schema[K] extends InvokeSpec<unknown, infer R> ? R : never;
export type PayloadOf<K extends NotifyName> = Schema[K] extends NotifySpec<infer P> ? P : never;

export type Answer<T> = { type: 'success'; value: T } | { type: 'error'; message: string };

/** The renderer's side: `api.setAppRule(patch)`, `api.listenUpdate(fn)`. */
export type BraidApi = {
  [K in InvokeName]: (arg: RequestOf<K>) => Promise<ResponseOf<K>>;
} & {
  [K in NotifyName as `listen${Capitalize<K>}`]: (
    fn: (payload: PayloadOf<K>) => void,
  ) => () => void;
};

/** The host's side: one function per invoke. */
export type Handlers = {
  [K in InvokeName]: (arg: RequestOf<K>) => ResponseOf<K> | Promise<ResponseOf<K>>;
};

/** The only place a channel name is formed. */
export function channelOf(name: CallName): string {
  return `braid:${name}`;
}

export const INVOKE_NAMES = (Object.keys(ipcSchema) as CallName[]).filter(
  (k): k is InvokeName => ipcSchema[k].kind === 'invoke',
);
export const NOTIFY_NAMES = (Object.keys(ipcSchema) as CallName[]).filter(
  (k): k is NotifyName => ipcSchema[k].kind === 'notify',
);

export function isInvokeName(name: unknown): name is InvokeName {
  return typeof name === 'string' && (INVOKE_NAMES as readonly string[]).includes(name);
}

/** How a renderer reaches the host: Electron IPC or the dashboard server's WebSocket. */
export interface RendererTransport {
  invoke(channel: string, arg: unknown): Promise<unknown>;
  listen(channel: string, fn: (payload: unknown) => void): () => void;
}

/** An invoke that the host answered with `{ type: 'error' }`. */
export class ContractError extends Error {
  constructor(
    readonly call: string,
    message: string,
  ) {
    super(`${call}: ${message}`);
    this.name = 'ContractError';
  }
}

function isAnswer(x: unknown): x is Answer<unknown> {
  if (typeof x !== 'object' || x === null) return false;
  const a = x as { type?: unknown; message?: unknown };
  return a.type === 'success' || (a.type === 'error' && typeof a.message === 'string');
}

/** Derives the renderer's `BraidApi` from the schema over any transport. */
export function createApi(transport: RendererTransport): BraidApi {
  const api: Record<string, unknown> = {};
  for (const name of INVOKE_NAMES) {
    api[name] = async (arg: unknown): Promise<unknown> => {
      const answer = await transport.invoke(channelOf(name), arg ?? null);
      if (!isAnswer(answer)) throw new ContractError(name, 'malformed answer from the host');
      if (answer.type === 'error') throw new ContractError(name, answer.message);
      return answer.value;
    };
  }
  for (const name of NOTIFY_NAMES) {
    const key = `listen${name[0]!.toUpperCase()}${name.slice(1)}`;
    api[key] = (fn: (payload: unknown) => void) => transport.listen(channelOf(name), fn);
  }
  return api as BraidApi;
}

/**
 * The host's side of one invoke: validates the argument against the schema, runs the
 * handler, and answers success or error; never throws, so a bad request from the UI
 * cannot take the host down.
 */
export async function answerInvoke(
  handlers: Handlers,
  name: unknown,
  arg: unknown,
): Promise<Answer<unknown>> {
  if (!isInvokeName(name)) return { type: 'error', message: `unknown call ${describeValue(name)}` };
  const checked = (ipcSchema[name].validate as Validator<unknown>)(arg ?? null, '');
  if (!checked.ok) return { type: 'error', message: checked.error };
  try {
    const handler = handlers[name] as (a: unknown) => unknown;
    return { type: 'success', value: await handler(checked.value) };
  } catch (err) {
    return { type: 'error', message: err instanceof Error ? err.message : String(err) };
  }
}

/** Call name from a channel, for the host's transports; undefined for a foreign channel. */
export function callFromChannel(channel: string): InvokeName | undefined {
  const name = channel.startsWith('braid:') ? channel.slice('braid:'.length) : '';
  return isInvokeName(name) ? name : undefined;
}
