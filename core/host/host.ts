import { EventEmitter } from 'node:events';
import { PathMetricsCache } from '../paths/path-metrics-cache.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { BraidClient, type ClientOptions } from '../api/client.js';
import { DataCapLedger } from '../paths/data-caps.js';
import { parseInvite } from '../handshake/invite.js';
import { startRelay, type Relay } from '../relay/relay.js';
import type { Path } from '../session/path.js';
import type { Objective as WireObjective, Semantics as WireSemantics } from '../wire/frame.js';
import { systemClock, systemRandom, type Clock, type Random } from '../util/clock.js';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';
import { InterfaceWatcher, type Uplink } from '../iface/index.js';
import { BypassFlow, openSessionFlow, type AppFlow } from './app-flow.js';
import { defaultRule, RuleBook, type AppRule as ProxyAppRule } from '../proxy/rules.js';
import {
  HISTORY_SECONDS,
  type AppRule,
  type AppRulePatch,
  type AppView,
  type AssociationStatus,
  type BypassRequest,
  type EngineEvent,
  type Handlers,
  type Objective,
  type PathView,
  type Sample,
  type Semantics,
  type SessionView,
  type SettingsPatch,
  type SettingsView,
  type Snapshot,
  type Update,
  type UplinkKind,
  type UplinkPatch,
  type UplinkRole,
  type UplinkState,
  type UplinkView,
} from './contract.js';
import { DEMO_APPS, DEMO_UPLINKS, type DemoApp } from './demo.js';
import { demoLink } from './demo-link.js';
import { countersOf, LinkMetrics, type PathCounters } from './link-metrics.js';
import { defaultSettings, loadSettings, saveSettings, type Settings } from './settings.js';

// The contract restates core/wire's unions (it may import nothing); these fail to
// compile if the two ever drift apart.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const semanticsMatch: Same<Semantics, WireSemantics> = true;
const objectivesMatch: Same<Objective, WireObjective> = true;
const rulesMatch: Same<AppRule, ProxyAppRule> = true;
void semanticsMatch;
void objectivesMatch;
void rulesMatch;

export interface HostOptions {
  /** demo: embedded relay, loopback uplinks behind emulated links, apps with traffic. */
  mode: 'demo' | 'live';
  /** Where settings live; undefined keeps them in memory only. */
  settingsFile?: string;
  /** core/proxy's per-app rules file; default `rules.json` beside the settings file. */
  rulesFile?: string;
  /** Demo uplinks to use (1..4); default 3, as `npm run demo`. */
  demoUplinks?: number;
  /** Period of the snapshot stream (ms). */
  tickMs?: number;
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** Set by Electron, which can register the app at login; the headless server cannot. */
  launchAtLogin?: (on: boolean) => void;
}

export interface HostEvents {
  update: [Update];
}

/** Loss rate over which an up uplink is shown degraded (and the tray turns amber). */
export const DEGRADED_LOSS = 0.05;
/** Packets in the loss window below which the loss rate is shown but not judged. */
export const DEGRADED_MIN_PACKETS = 50;
/** How many recent events the snapshot carries. */
const RECENT_EVENTS = 100;
/** Offered traffic is generated in steps of this many ms. */
const TRAFFIC_STEP_MS = 50;

interface UplinkEntry {
  id: string;
  name: string;
  kind: UplinkKind;
  address: string | null;
  transport: 'udp' | 'tcp';
  /** Interface up (live) — the demo's are always up. */
  up: boolean;
  usedBytes: number;
  history: Sample[];
  view: UplinkView | undefined;
}

interface PathEntry {
  metrics: LinkMetrics;
  lastBytes: number;
}

interface AppEntry {
  appId: string;
  demo: DemoApp | undefined;
  flow: AppFlow | undefined;
  lastSent: number;
  rateBps: number;
  phase: number;
}

interface SessionMark {
  byPath: Map<number, number>;
  bytes: number;
  at: number;
  rateBps: number;
  split: Map<number, number>;
}

/**
 * The engine as one object (DESIGN §2, core/host): owns the association, the uplinks,
 * the apps' flows and the settings, emits a typed `Update` a few times a second and
 * takes typed commands (`handlers`, one per invoke of the contract). Electron's main
 * process and the headless dashboard server both host it the same way.
 */
export class BraidHost extends EventEmitter<HostEvents> {
  readonly mode: 'demo' | 'live';
  readonly handlers: Handlers;
  private readonly clock: Clock;
  /** What ended paths learned, for the paths of the next association (RFC 9040). */
  private readonly pathMetrics = new PathMetricsCache();
  private readonly random: Random;
  private readonly log: Logger;
  private readonly tickMs: number;
  private readonly settingsFile: string | undefined;
  private readonly launchAtLoginHook: ((on: boolean) => void) | undefined;
  private settings: Settings;
  private readonly rules: RuleBook;
  private readonly warnings: string[] = [];
  private readonly uplinks = new Map<string, UplinkEntry>();
  private readonly paths = new Map<number, PathEntry>();
  private readonly apps = new Map<string, AppEntry>();
  private readonly sessionMarks = new Map<number, SessionMark>();
  private readonly events: EngineEvent[] = [];
  private pendingEvents: EngineEvent[] = [];
  private eventSeq = 0;
  private seq = 0;
  private client: BraidClient | undefined;
  private readonly caps: DataCapLedger;
  private associationStatus: AssociationStatus = 'none';
  private relay: Relay | undefined;
  private relayStateDir: string | undefined;
  private bypassServer: Server | undefined;
  private bypassTarget: { host: string; port: number } | undefined;
  private readonly bypassSockets = new Set<Socket>();
  private watcher: InterfaceWatcher | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private trafficTimer: NodeJS.Timeout | undefined;
  private lastUpdate: Update | undefined;
  private demoConfig: ClientOptions['config'];
  private aggregateHistory: Sample[] = [];
  private stopped = false;
  private readonly historyLength: number;

  private constructor(options: HostOptions) {
    super();
    this.mode = options.mode;
    this.clock = options.clock ?? systemClock;
    this.random = options.random ?? systemRandom;
    this.log = (options.logger ?? createLogger()).child({ component: 'host' });
    this.tickMs = options.tickMs ?? 200;
    this.historyLength = Math.ceil((HISTORY_SECONDS * 1000) / this.tickMs);
    this.settingsFile = options.settingsFile;
    this.launchAtLoginHook = options.launchAtLogin;
    if (options.settingsFile === undefined) {
      this.settings = defaultSettings();
    } else {
      const loaded = loadSettings(options.settingsFile);
      this.settings = loaded.settings;
      for (const w of loaded.warnings) this.warn(w);
    }
    // Monthly data caps, accounted beside the settings (a temporary file in demo mode).
    this.caps = new DataCapLedger({
      file:
        options.settingsFile === undefined
          ? join(tmpdir(), `braid-data-caps-${process.pid}.json`)
          : join(dirname(options.settingsFile), 'data-caps.json'),
      logger: this.log,
    });
    for (const [id, u] of Object.entries(this.settings.uplinks))
      this.caps.setCap(id, u.capBytes ?? 0);
    const rulesFile =
      options.rulesFile ??
      (options.settingsFile === undefined
        ? undefined
        : join(dirname(options.settingsFile), 'rules.json'));
    if (rulesFile === undefined) {
      this.rules = new RuleBook({ logger: this.log });
    } else {
      const existed = existsSync(rulesFile);
      this.rules = RuleBook.load(rulesFile, this.log);
      // RuleBook moves a broken file aside and logs it; the user should see it too.
      if (existed && !existsSync(rulesFile))
        this.warn(`rules: ${rulesFile} was broken; moved aside, apps use their default rules`);
    }
    this.handlers = {
      getSnapshot: () => this.snapshot(),
      setAppRule: (patch) => this.setAppRule(patch),
      setUplink: (patch) => this.setUplink(patch),
      setBypass: (req) => this.setBypass(req),
      setRelaySettings: (req) => this.setRelayInvite(req.relayInvite),
      setSettings: (patch) => this.setSettings(patch),
    };
  }

  /** Starts the engine; in demo mode also the embedded relay and the apps' traffic. */
  static async start(options: HostOptions): Promise<BraidHost> {
    const host = new BraidHost(options);
    try {
      if (options.mode === 'demo') await host.startDemo(options.demoUplinks ?? 3);
      else await host.startLive();
    } catch (err) {
      await host.stop();
      throw err;
    }
    host.tickTimer = setInterval(() => host.tick(), host.tickMs);
    host.tick();
    return host;
  }

  // ----------------------------------------------------------------- start-up

  private async startDemo(count: number): Promise<void> {
    if (!Number.isInteger(count) || count < 1 || count > DEMO_UPLINKS.length)
      throw new BraidError('BRAID_ERR_USAGE', `demo uplinks must be 1..${DEMO_UPLINKS.length}`, {
        value: count,
      });
    const specs = DEMO_UPLINKS.slice(0, count);
    for (const s of specs) {
      this.uplinks.set(s.id, {
        id: s.id,
        name: s.name,
        kind: s.kind,
        address: s.address,
        transport: s.transport,
        up: true,
        usedBytes: 0,
        history: [],
        view: undefined,
      });
    }
    // The relay runs in this process (DESIGN §1: the demo needs no server), at error
    // level: the client side reports the same path events, and the UI shows those.
    this.relayStateDir = mkdtempSync(join(tmpdir(), 'braid-dashboard-'));
    this.relay = await startRelay({
      stateDir: this.relayStateDir,
      host: '127.0.0.1',
      port: 0,
      transports: ['udp', 'tcp'],
      logger: createLogger({ level: 'error' }),
    });
    // The relay answers byte streams itself; message sessions (the UDP apps) are echoed here.
    this.relay.listener.on('messages', (socket) => {
      socket.on('message', (m) => {
        try {
          socket.send(m);
        } catch (err) {
          this.log.debug('echo of a message failed', errorFields(err));
        }
      });
      socket.on('end', () => socket.end());
      socket.on('error', (err) => this.log.debug('echo session ended', errorFields(err)));
    });
    // Bypassed flows leave the association: a plain TCP echo stands for "the Internet".
    this.bypassServer = createServer((sock) => {
      this.bypassSockets.add(sock);
      sock.on('close', () => this.bypassSockets.delete(sock));
      sock.on('error', (err) => this.log.debug('bypass echo socket', errorFields(err)));
      sock.pipe(sock);
    });
    await new Promise<void>((resolve, reject) => {
      this.bypassServer!.once('error', reject);
      this.bypassServer!.listen(0, '127.0.0.1', () => resolve());
    });
    const address = this.bypassServer.address();
    if (address === null || typeof address === 'string')
      throw new BraidError('BRAID_ERR_INTERNAL', 'bypass echo server has no port');
    this.bypassTarget = { host: '127.0.0.1', port: address.port };

    const invite = this.relay.invites[0]!.invite;
    // Sessions go where their objectives say, so an uplink may carry no data for a
    // while; probing idle paths twice a second keeps every card's latency live.
    this.demoConfig = { keepaliveMs: 500 };
    await this.connect(invite, (subflow, plan) => {
      const spec = specs.find((s) => s.address === plan.localAddress);
      return spec === undefined ? subflow : demoLink(subflow, spec.link, this.clock, this.random);
    });
    for (const demo of DEMO_APPS) {
      this.apps.set(demo.appId, {
        appId: demo.appId,
        demo,
        flow: undefined,
        lastSent: 0,
        rateBps: 0,
        phase: this.random() * Math.PI * 2,
      });
    }
    for (const app of this.apps.values()) this.reroute(app);
    this.trafficTimer = setInterval(() => this.generateTraffic(), TRAFFIC_STEP_MS);
    this.event('info', `demo started: ${specs.length} loopback uplinks, ${DEMO_APPS.length} apps`);
  }

  private async startLive(): Promise<void> {
    for (const r of this.rules.list())
      this.apps.set(r.appId, {
        appId: r.appId,
        demo: undefined,
        flow: undefined,
        lastSent: 0,
        rateBps: 0,
        phase: 0,
      });
    this.watcher = new InterfaceWatcher();
    const onUplink = (u: Uplink): void => this.liveUplink(u);
    this.watcher.on('added', onUplink);
    this.watcher.on('changed', onUplink);
    this.watcher.on('removed', (u: Uplink) => {
      const entry = this.uplinks.get(u.name);
      if (entry !== undefined) entry.up = false;
      this.event('warn', `uplink ${u.name} removed`);
    });
    await this.watcher.start();
    if (this.settings.relayInvite !== null) {
      await this.connect(this.settings.relayInvite, undefined).catch((err: unknown) =>
        this.warn(`could not reach the relay: ${err instanceof Error ? err.message : String(err)}`),
      );
    }
  }

  private liveUplink(u: Uplink): void {
    if (u.ignored) return;
    const v4 = u.addresses.find((a) => a.family === 4);
    const existing = this.uplinks.get(u.name);
    const up = u.up && u.gatewayReachable !== false;
    if (existing === undefined) {
      this.uplinks.set(u.name, {
        id: u.name,
        name: u.name,
        kind: u.kind,
        address: v4?.address ?? null,
        transport: 'udp',
        up,
        usedBytes: 0,
        history: [],
        view: undefined,
      });
      this.event('info', `uplink ${u.name} (${u.kind}) appeared`);
    } else {
      if (existing.up !== up)
        this.event(up ? 'info' : 'warn', `uplink ${u.name} ${up ? 'up' : 'down'}`);
      existing.up = up;
      existing.address = v4?.address ?? null;
    }
  }

  private async connect(invite: string, wrap: ClientOptions['wrapSubflow']): Promise<void> {
    const via: string[] = [];
    const transports: Array<'udp' | 'tcp'> = [];
    for (const u of this.uplinks.values()) {
      if (u.address === null || this.roleOf(u.id) === 'never') continue;
      via.push(u.address);
      transports.push(u.transport);
    }
    if (via.length === 0) {
      this.warn('no usable uplink: every uplink is set to never or has no address');
      return;
    }
    this.associationStatus = 'connecting';
    const connected = await BraidClient.connect({
      invite,
      via,
      transports,
      logger: this.log,
      pathMetrics: this.pathMetrics,
      ...(this.demoConfig === undefined ? {} : { config: this.demoConfig }),
      ...(wrap === undefined ? {} : { wrapSubflow: wrap }),
    });
    if (connected.kind === 'legacy') {
      this.associationStatus = 'none';
      throw new BraidError('BRAID_ERR_LEGACY_PEER', 'the relay did not answer as Braid', {
        value: connected.reason,
      });
    }
    this.client = connected.client;
    // Caps count every path's bytes against its uplink; reaching one demotes it to backup.
    connected.client.useDataCaps(this.caps, (local) => this.uplinkOfAddress(local)?.id ?? local);
    connected.client.on('event', (e) => {
      if (e.type === 'cap-warning' || e.type === 'cap-reached') {
        const id = this.uplinkOfAddress(e.local)?.id ?? e.local;
        this.event(
          'warn',
          e.type === 'cap-warning'
            ? `uplink ${id} used 80% of its data cap (${formatBytes(e.usedBytes)} of ${formatBytes(e.capBytes)})`
            : `uplink ${id} reached its data cap: demoted to backup until the month ends`,
        );
      }
    });
    const association = connected.client.association;
    association.on('path', (path, state) => {
      const uplink = this.uplinkOfAddress(path.subflow.localAddress);
      this.event(
        state === 'failed' || state === 'suspect' ? 'warn' : 'info',
        `path ${path.id} (${uplink?.id ?? path.subflow.localAddress}, ${path.kind}) ${state}`,
      );
    });
    association.on('closed', (error) => {
      this.event('error', `association closed${error === undefined ? '' : `: ${error.message}`}`);
    });
    this.event('info', `association up over ${association.livePaths.length} paths`);
    this.applyRoles();
  }

  // ----------------------------------------------------------------- commands

  private setAppRule(patch: AppRulePatch): AppRule {
    const before = this.ruleOf(patch.appId);
    if (before === undefined)
      throw new BraidError('BRAID_ERR_USAGE', 'no such app', { value: patch.appId });
    // core/proxy's RuleBook validates the whole rule again and saves it (BRAID_ERR_RULES);
    // patch.appId names the same app as before.appId.
    this.rules.set({
      ...before,
      ...patch,
      priorities: [...(patch.priorities ?? before.priorities)],
    });
    const rule = this.ruleOf(patch.appId)!;
    const app = this.apps.get(rule.appId);
    // Semantics and priorities travel in the session's OPEN, so a change needs a new
    // session; the sliders are weights read at scheduling time (see `doing`).
    const reopen =
      before.udpSemantics !== rule.udpSemantics ||
      before.priorities.join() !== rule.priorities.join() ||
      before.bypass !== rule.bypass;
    if (app !== undefined && reopen) this.reroute(app, true);
    this.event('info', `rule of ${rule.name} changed: ${describePatch(patch)}`);
    return rule;
  }

  private setUplink(patch: UplinkPatch): null {
    const entry = this.uplinks.get(patch.uplinkId);
    if (entry === undefined)
      throw new BraidError('BRAID_ERR_USAGE', 'no such uplink', { value: patch.uplinkId });
    const current = this.settings.uplinks[entry.id] ?? { role: 'primary', capBytes: null };
    this.settings.uplinks[entry.id] = {
      role: patch.role ?? current.role,
      capBytes: patch.capBytes === undefined ? current.capBytes : patch.capBytes,
    };
    this.persist();
    if (patch.role !== undefined && patch.role !== current.role) {
      this.event('info', `uplink ${entry.id} role ${current.role} → ${patch.role}`);
      this.applyRoles();
    }
    if (patch.capBytes !== undefined) this.caps.setCap(entry.id, patch.capBytes ?? 0);
    if (patch.capBytes !== undefined)
      this.event(
        'info',
        `uplink ${entry.id} cap ${patch.capBytes === null ? 'removed' : formatBytes(patch.capBytes)}`,
      );
    return null;
  }

  private setBypass(req: BypassRequest): null {
    if (req.appId === undefined) {
      this.settings.globalBypass = req.on;
      this.persist();
      this.event('info', `global bypass ${req.on ? 'on' : 'off'}`);
      for (const app of this.apps.values()) this.reroute(app);
    } else {
      this.setAppRule({ appId: req.appId, bypass: req.on });
    }
    return null;
  }

  private setRelayInvite(invite: string | null): SettingsView {
    if (invite !== null) parseInvite(invite); // throws BRAID_ERR_BAD_INVITE naming the field
    this.settings.relayInvite = invite;
    this.persist();
    if (this.mode === 'demo') {
      this.event('info', 'relay invite saved; the demo keeps its embedded relay');
    } else {
      this.client?.close();
      this.client = undefined;
      this.associationStatus = 'none';
      if (invite !== null) {
        this.connect(invite, undefined).catch((err: unknown) =>
          this.warn(
            `could not reach the relay: ${err instanceof Error ? err.message : String(err)}`,
          ),
        );
      }
    }
    return this.settingsView();
  }

  private setSettings(patch: SettingsPatch): SettingsView {
    if (patch.proxyPort !== undefined) this.settings.proxyPort = patch.proxyPort;
    if (patch.launchAtLogin !== undefined) {
      if (this.launchAtLoginHook === undefined && patch.launchAtLogin)
        throw new BraidError('BRAID_ERR_USAGE', 'launch at login needs the desktop app');
      this.settings.launchAtLogin = patch.launchAtLogin;
      this.launchAtLoginHook?.(patch.launchAtLogin);
    }
    this.persist();
    return this.settingsView();
  }

  // ----------------------------------------------------------------- reading

  /** The rule the engine applies to `appId` now: the user's, else its kind's default. */
  rule(appId: string): AppRule | undefined {
    return this.ruleOf(appId);
  }

  private ruleOf(appId: string): AppRule | undefined {
    const own = this.rules.get(appId);
    if (own !== undefined) return own;
    const demo = this.apps.get(appId)?.demo;
    return demo === undefined ? undefined : defaultRule(demo.appId, demo.name, demo.kind);
  }

  /** Where the engine sends `appId`'s traffic now. */
  routeOf(appId: string): AppView['route'] {
    const flow = this.apps.get(appId)?.flow;
    return flow === undefined || flow.closed ? { kind: 'idle' } : flow.route;
  }

  /** Ids of the sessions open on the association now. */
  sessionIds(): number[] {
    return this.client === undefined ? [] : [...this.client.association.sessions.keys()];
  }

  get globalBypass(): boolean {
    return this.settings.globalBypass;
  }

  snapshot(): Snapshot {
    const update = this.lastUpdate ?? this.buildUpdate();
    const history: Record<string, Sample[]> = { '*': [...this.aggregateHistory] };
    for (const u of this.uplinks.values()) history[u.id] = [...u.history];
    return { ...update, events: this.events.slice(-RECENT_EVENTS), history };
  }

  // ----------------------------------------------------------------- engine

  private roleOf(uplinkId: string): UplinkRole {
    return this.settings.uplinks[uplinkId]?.role ?? 'primary';
  }

  private uplinkOfAddress(address: string): UplinkEntry | undefined {
    for (const u of this.uplinks.values()) if (u.address === address) return u;
    return undefined;
  }

  private pathsOf(uplink: UplinkEntry): Path[] {
    if (this.client === undefined || uplink.address === null) return [];
    return [...this.client.association.paths.values()].filter(
      (p) => p.subflow.localAddress === uplink.address,
    );
  }

  /**
   * DESIGN §1 roles: the client's schedulers follow primary / secondary / backup
   * (core/paths/uplink-roles.ts: a secondary only while the primaries cannot send, a
   * backup only while no primary or secondary is up), so those paths stay open and
   * probed; `never` closes the uplink's paths, and leaving it joins a new one.
   */
  private applyRoles(): void {
    const client = this.client;
    if (client === undefined || client.association.state === 'closed') return;
    for (const u of this.uplinks.values()) {
      const role = this.roleOf(u.id);
      if (u.address !== null && role !== 'never') client.setUplinkRole(u.address, role);
      const want = role !== 'never' && u.up;
      const live = this.pathsOf(u).filter((p) => p.alive);
      if (!want) {
        for (const p of live) client.association.closePath(p);
      } else if (live.length === 0 && u.address !== null) {
        client
          .addPath({
            localAddress: u.address,
            remoteAddress: client.invite.host,
            transport: u.transport,
          })
          .catch((err: unknown) =>
            this.event(
              'warn',
              `uplink ${u.id} could not join: ${err instanceof Error ? err.message : String(err)}`,
            ),
          );
      }
    }
  }

  /** The uplink a bypassed flow leaves on: the best live one by role, then latency. */
  private bestUplink(): UplinkEntry | null {
    const rank: Record<UplinkRole, number> = { primary: 0, secondary: 1, backup: 2, never: 9 };
    let best: UplinkEntry | null = null;
    let bestKey = Infinity;
    for (const u of this.uplinks.values()) {
      const role = this.roleOf(u.id);
      if (role === 'never' || !u.up || u.address === null) continue;
      const key = rank[role] * 1e6 + (u.view?.latencyMs ?? 1e5);
      if (key < bestKey) {
        best = u;
        bestKey = key;
      }
    }
    return best;
  }

  private bypassed(appId: string): boolean {
    return this.settings.globalBypass || this.ruleOf(appId)?.bypass === true;
  }

  /** Puts the app's flow where its rule says: on the association or outside it. */
  private reroute(app: AppEntry, force = false): void {
    if (app.demo === undefined) return;
    const wantBypass = this.bypassed(app.appId);
    const flow = app.flow;
    const isBypass = flow?.route.kind === 'bypass';
    if (!force && flow !== undefined && !flow.closed && isBypass === wantBypass) return;
    flow?.close();
    app.flow = undefined;
    app.lastSent = 0;
    const rule = this.ruleOf(app.appId);
    if (rule === undefined) return;
    if (wantBypass) {
      if (this.bypassTarget === undefined) return;
      const best = this.bestUplink();
      app.flow = new BypassFlow(
        this.bypassTarget,
        best === null ? null : { id: best.id, address: best.address! },
        this.log,
      );
      this.event('info', `${rule.name} bypasses Braid via ${best?.id ?? 'the default route'}`);
    } else if (this.client !== undefined && this.client.association.state !== 'closed') {
      app.flow = openSessionFlow(this.client, rule, app.demo.transport, this.log);
      const route = app.flow.route;
      this.event(
        'info',
        `${rule.name} on session ${route.kind === 'association' ? route.sessionId : '?'} (${app.demo.transport === 'udp' ? rule.udpSemantics : 'reliable-ordered'})`,
      );
    }
  }

  private generateTraffic(): void {
    const now = this.clock.now();
    for (const app of this.apps.values()) {
      const demo = app.demo;
      if (demo === undefined) continue;
      if (app.flow === undefined || app.flow.closed) {
        this.reroute(app, true);
        if (app.flow === undefined) continue;
      }
      // A slow swing plus noise, and quiet spells for apps that have them.
      const wave = Math.sin((now / demo.periodMs) * Math.PI * 2 + app.phase);
      const quiet =
        demo.idleShare > 0 &&
        Math.sin((now / (demo.periodMs * 1.7)) * Math.PI * 2 + app.phase) < -1 + demo.idleShare * 2;
      const rate = quiet
        ? 0
        : demo.meanBps * Math.max(0, 1 + demo.swing * wave + 0.2 * (this.random() - 0.5));
      app.flow.offer(Math.round((rate * TRAFFIC_STEP_MS) / 1000));
    }
  }

  private tick(): void {
    if (this.stopped) return;
    try {
      const update = this.buildUpdate();
      this.lastUpdate = update;
      this.emit('update', update);
    } catch (err) {
      this.log.error('snapshot failed', errorFields(err));
    }
  }

  private buildUpdate(): Update {
    const now = this.clock.now();
    const at = Date.now();
    const association = this.client?.association;
    if (association !== undefined) {
      this.associationStatus = association.state;
    }
    const summaries = new Map(association?.pathSummary().map((s) => [s.id, s]) ?? []);
    const pathViews: PathView[] = [];
    for (const [id, path] of association?.paths ?? []) {
      const summary = summaries.get(id);
      let entry = this.paths.get(id);
      if (entry === undefined) {
        entry = { metrics: new LinkMetrics({ clock: this.clock }), lastBytes: 0 };
        this.paths.set(id, entry);
      }
      // Prefer core/paths' own estimators once PathSummary carries them.
      const extra = (summary ?? {}) as { jitterMs?: unknown; lossRate?: unknown };
      const counters: PathCounters = {
        ...countersOf(path),
        ...(typeof extra.jitterMs === 'number' ? { jitterMs: extra.jitterMs } : {}),
        ...(typeof extra.lossRate === 'number' ? { lossRate: extra.lossRate } : {}),
      };
      entry.metrics.update(counters);
      const bytes = path.stats.bytesSent + path.stats.bytesReceived;
      const uplink = this.uplinkOfAddress(path.subflow.localAddress);
      if (uplink !== undefined) uplink.usedBytes += bytes - entry.lastBytes;
      entry.lastBytes = bytes;
      pathViews.push({
        id,
        uplinkId: uplink?.id ?? path.subflow.localAddress,
        transport: path.kind,
        state: path.state,
        local: path.subflow.localAddress,
        remote: `${path.subflow.remoteAddress}:${path.subflow.remotePort}`,
        srttMs: path.recovery.srtt,
        cwnd: path.recovery.cwnd,
        deliveryRate: path.recovery.deliveryRate,
        controller: path.recovery.controller,
        coupled: path.recovery.linked,
        sharedBottleneckWith: summary?.sharedBottleneckWith ?? [],
      });
    }

    const uplinkViews: UplinkView[] = [];
    // A backup uplink stands by while a primary or secondary one has an active path.
    const mainUp = [...this.uplinks.values()].some((u) => {
      const role = this.roleOf(u.id);
      return (
        (role === 'primary' || role === 'secondary') &&
        this.pathsOf(u).some((p) => p.state === 'active')
      );
    });
    let up = 0;
    let down = 0;
    let uplinksUp = 0;
    for (const u of this.uplinks.values()) {
      const role = this.roleOf(u.id);
      const paths = this.pathsOf(u);
      const current = paths.filter((p) => p.alive).at(-1) ?? paths.at(-1);
      const m = current === undefined ? undefined : this.paths.get(current.id)?.metrics;
      const alive = paths.some((p) => p.state === 'active');
      const suspect = paths.some((p) => p.state === 'suspect');
      const state: UplinkState =
        role === 'never'
          ? 'disabled'
          : !u.up
            ? 'down'
            : role === 'backup' && mainUp && alive
              ? 'standby'
              : !alive && !suspect
                ? 'down'
                : suspect ||
                    ((m?.lossRate ?? 0) > DEGRADED_LOSS &&
                      (m?.lossBasisPackets ?? 0) >= DEGRADED_MIN_PACKETS)
                  ? 'degraded'
                  : 'up';
      const live = current?.alive === true;
      const view: UplinkView = {
        id: u.id,
        name: u.name,
        kind: u.kind,
        address: u.address,
        transport: current?.kind ?? u.transport,
        state,
        role,
        latencyMs: live ? (m?.latencyMs ?? null) : null,
        jitterMs: live ? (m?.jitterMs ?? null) : null,
        lossRate: live ? (m?.lossRate ?? null) : null,
        upBps: live ? (m?.upBps ?? 0) : 0,
        downBps: live ? (m?.downBps ?? 0) : 0,
        // This month's use from the cap ledger once it counted anything; else this run's.
        usedBytes: this.caps.get(u.id)?.usedBytes ?? u.usedBytes,
        capBytes: this.settings.uplinks[u.id]?.capBytes ?? null,
        pathIds: paths.map((p) => p.id),
      };
      u.view = view;
      if (state === 'up' || state === 'degraded') uplinksUp++;
      up += view.upBps;
      down += view.downBps;
      uplinkViews.push(view);
      pushBounded(
        u.history,
        {
          t: at,
          latencyMs: view.latencyMs,
          jitterMs: view.jitterMs,
          lossRate: view.lossRate,
          upBps: view.upBps,
          downBps: view.downBps,
        },
        this.historyLength,
      );
    }
    pushBounded(
      this.aggregateHistory,
      { t: at, latencyMs: null, jitterMs: null, lossRate: null, upBps: up, downBps: down },
      this.historyLength,
    );

    const appOf = new Map<number, AppEntry>();
    for (const app of this.apps.values()) {
      const route = app.flow?.route;
      if (route?.kind === 'association' && app.flow?.closed === false)
        appOf.set(route.sessionId, app);
      const sent = app.flow?.sentBytes ?? 0;
      const delta = Math.max(0, sent - app.lastSent);
      app.lastSent = sent;
      // A short exponential average, so the rate reads steady at a few ticks a second.
      app.rateBps += ((delta * 1000) / this.tickMs - app.rateBps) * 0.3;
    }

    const sessionViews: SessionView[] = [];
    const seen = new Set<number>();
    for (const [id, session] of association?.sessions ?? []) {
      seen.add(id);
      const mark = this.sessionMarks.get(id) ?? {
        byPath: new Map<number, number>(),
        bytes: 0,
        at: now,
        rateBps: 0,
        split: new Map<number, number>(),
      };
      let total = 0;
      let deltaTotal = 0;
      const deltas = new Map<number, number>();
      for (const [pathId, b] of session.bytesByPath) {
        total += b;
        const d = b - (mark.byPath.get(pathId) ?? 0);
        deltas.set(pathId, d);
        deltaTotal += d;
      }
      const dt = (now - mark.at) / 1000;
      if (dt > 0) mark.rateBps += ((total - mark.bytes) / dt - mark.rateBps) * 0.3;
      // The live split: each path's share of what the session sent since the last tick,
      // smoothed; a session that sent nothing keeps its last split.
      if (deltaTotal > 0) {
        for (const [pathId, d] of deltas) {
          const prev = mark.split.get(pathId) ?? d / deltaTotal;
          mark.split.set(pathId, prev + (d / deltaTotal - prev) * 0.3);
        }
        for (const pathId of mark.split.keys())
          if (!deltas.has(pathId)) mark.split.set(pathId, (mark.split.get(pathId) ?? 0) * 0.7);
      }
      mark.byPath = new Map(session.bytesByPath);
      mark.bytes = total;
      mark.at = now;
      this.sessionMarks.set(id, mark);
      const app = appOf.get(id);
      const rule = app === undefined ? undefined : this.ruleOf(app.appId);
      const splitSum = [...mark.split.values()].reduce((a, b) => a + b, 0);
      sessionViews.push({
        id,
        appId: app?.appId ?? null,
        appName: rule?.name ?? (session.local ? 'local' : 'peer'),
        target: session.target,
        semantics: session.semantics,
        priorities: [...session.priorities],
        state: session.state,
        bytes: total,
        rateBps: Math.max(0, mark.rateBps),
        split: [...mark.split]
          .filter(([, s]) => s > 0.001)
          .map(([pathId, s]) => ({
            pathId,
            uplinkId: pathViews.find((p) => p.id === pathId)?.uplinkId ?? String(pathId),
            share: splitSum > 0 ? s / splitSum : 0,
          })),
        reinjectedBytes: session.tailReinjectedBytes + session.holReinjectedBytes,
      });
    }
    for (const id of this.sessionMarks.keys()) if (!seen.has(id)) this.sessionMarks.delete(id);

    const appViews: AppView[] = [];
    const known = [...new Set([...this.apps.keys(), ...this.rules.list().map((r) => r.appId)])];
    for (const appId of known) {
      const r = this.ruleOf(appId);
      if (r === undefined) continue;
      const app = this.apps.get(r.appId);
      const route = this.routeOf(r.appId);
      const session =
        route.kind === 'association'
          ? sessionViews.find((s) => s.id === route.sessionId)
          : undefined;
      appViews.push({
        rule: r,
        route,
        rateBps: Math.max(0, app?.rateBps ?? 0),
        doing: describeDoing(r, route, session, app?.demo?.transport, this.settings.globalBypass),
      });
    }

    const events = this.pendingEvents;
    this.pendingEvents = [];
    return {
      seq: ++this.seq,
      at,
      mode: this.mode,
      association: this.associationStatus,
      uplinks: uplinkViews,
      paths: pathViews,
      sessions: sessionViews,
      apps: appViews,
      aggregate: { upBps: up, downBps: down, uplinksUp, uplinksTotal: this.uplinks.size },
      settings: this.settingsView(),
      events,
      warnings: [...this.warnings],
    };
  }

  private settingsView(): SettingsView {
    return {
      relayInvite: this.settings.relayInvite,
      proxyPort: this.settings.proxyPort,
      launchAtLogin: this.settings.launchAtLogin,
      globalBypass: this.settings.globalBypass,
      launchAtLoginSupported: this.launchAtLoginHook !== undefined,
    };
  }

  private persist(): void {
    if (this.settingsFile === undefined) return;
    try {
      saveSettings(this.settingsFile, this.settings);
    } catch (err) {
      this.warn(`settings could not be saved: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
    this.event('warn', message);
  }

  private event(level: EngineEvent['level'], message: string): void {
    const e: EngineEvent = { seq: ++this.eventSeq, at: Date.now(), level, message };
    this.events.push(e);
    if (this.events.length > RECENT_EVENTS * 2) this.events.splice(0, RECENT_EVENTS);
    this.pendingEvents.push(e);
    this.log.info(message, { level });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    if (this.trafficTimer !== undefined) clearInterval(this.trafficTimer);
    for (const app of this.apps.values()) app.flow?.close();
    this.client?.close();
    // Demo mode keeps no account: its ledger file was temporary.
    if (this.settingsFile === undefined) rmSync(this.caps.file, { force: true });
    await this.watcher?.stop();
    if (this.bypassServer !== undefined) {
      const server = this.bypassServer;
      for (const sock of this.bypassSockets) sock.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await this.relay?.close();
    if (this.relayStateDir !== undefined)
      rmSync(this.relayStateDir, { recursive: true, force: true });
    this.removeAllListeners();
  }
}

function pushBounded<T>(list: T[], item: T, max: number): void {
  list.push(item);
  if (list.length > max) list.splice(0, list.length - max);
}

function describePatch(patch: AppRulePatch): string {
  return Object.entries(patch)
    .filter(([k]) => k !== 'appId')
    .map(([k, value]) => `${k}=${Array.isArray(value) ? value.join('>') : String(value)}`)
    .join(', ');
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

/** Shares summed per uplink: a path replaced on the same uplink is still that uplink. */
function byUplink(split: SessionView['split']): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of split) out.set(s.uplinkId, (out.get(s.uplinkId) ?? 0) + s.share);
  return out;
}

/** The sentence the Apps view shows: what the engine does for the app now, from its state. */
function describeDoing(
  rule: AppRule,
  route: AppView['route'],
  session: SessionView | undefined,
  transport: 'tcp' | 'udp' | undefined,
  globalBypass: boolean,
): string {
  switch (route.kind) {
    case 'bypass':
      return `bypassing Braid (${globalBypass && !rule.bypass ? 'global bypass' : 'app rule'}): one plain TCP connection on ${route.uplinkId ?? 'the default route'}`;
    case 'idle':
      return 'no traffic from this app now';
    case 'association': {
      const sem = transport === 'udp' ? rule.udpSemantics : 'reliable-ordered';
      const split =
        session === undefined || session.split.length === 0
          ? 'waiting for its first bytes'
          : 'split ' +
            [...byUplink(session.split)]
              .sort((a, b) => b[1] - a[1])
              .map(([uplink, share]) => `${Math.round(share * 100)}% ${uplink}`)
              .join(', ');
      return `session ${route.sessionId}, ${sem}, priorities ${rule.priorities.join(' > ')}; ${split}`;
    }
  }
}
