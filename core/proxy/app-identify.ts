/**
 * Which application opened a proxied connection (DESIGN §1: per-app rules for
 * unmodified apps). The proxy sees the client's end of the socket (address and
 * port); the owning process is found from the OS:
 *
 * - Linux: /proc/net/{tcp,tcp6,udp,udp6} give the socket inode and owner uid of the
 *   socket whose local end is the client's; /proc/<pid>/fd of that uid's processes
 *   lead to the pid; /proc/<pid>/{exe,cmdline,stat} to the executable and the parent.
 * - macOS: `lsof` (best effort); Windows: `netstat -ano` and `tasklist` (best effort).
 *   Either answers "unknown" when its tool is missing.
 *
 * A process's children are the same app: from the owner we walk up the parent chain
 * to the topmost ancestor that is not a shell, terminal, init/systemd or session
 * manager (a browser's renderer and network processes are the browser; `make`'s
 * `curl` is `make`). An interpreter (node, python, java, ...) is told apart by its
 * script, since the executable alone would make every Node program one app.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import { basename } from 'node:path';
import { systemClock, type Clock } from '../util/clock.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';

export interface AppProfile {
  /** Stable identity: the executable's path, plus the script for interpreters; "unknown" when not found. */
  appId: string;
  /** A name for people: the executable's or script's base name. */
  name: string;
  /** The app's top process (after walking up from the socket's owner). */
  pid?: number;
  /** The process that owns the socket (may be a child of `pid`). */
  ownerPid?: number;
  exe?: string;
  cmdline?: string[];
}

export const UNKNOWN_APP: AppProfile = Object.freeze({ appId: 'unknown', name: 'unknown app' });

/** One end of a proxied connection as the proxy sees it. */
export interface SocketEnds {
  protocol: 'tcp' | 'udp';
  /** The client's end: its local address and port (the proxy's remote end). */
  clientAddress: string;
  clientPort: number;
  /** The proxy's end (the client's remote end); TCP only, to pick the right socket. */
  proxyAddress?: string;
  proxyPort?: number;
}

export interface AppIdentifier {
  identify(ends: SocketEnds): Promise<AppProfile>;
  /**
   * The uid owning the client's socket, for the proxy's local-user check; undefined
   * when the socket is gone. Absent on platforms where it cannot be read (only Linux
   * has it: /proc/net/tcp), which the proxy treats as "cannot tell users apart".
   */
  ownerUid?(ends: SocketEnds): Promise<number | undefined>;
}

/**
 * Coalesces reads of something that changes (a /proc table): a caller gets a read
 * that starts after its call, so it sees every socket that existed when it asked,
 * and callers that arrive before that read starts share it. The read waits for one
 * turn of the event loop (setImmediate), so a burst of connections accepted together
 * costs one read, not one each: the kernel takes 5-10 ms to list a thousand sockets
 * (TIME_WAIT ones included), and the read blocks the loop. When reads are that
 * slow, the next waits as long as the last took, so more callers share it.
 */
class FreshRead<T> {
  private running: Promise<T> | undefined;
  private queued: Promise<T> | undefined;
  private lastEnd = 0;
  private lastTook = 0;

  constructor(private readonly read: () => Promise<T>) {}

  get(): Promise<T> {
    if (this.queued !== undefined) return this.queued;
    const after = this.running?.then(
      () => undefined,
      () => undefined,
    );
    const queued = (after ?? Promise.resolve())
      .then(() => {
        // Reads take at most about half the time: the next one waits as long as the
        // last one took, and everyone who asks meanwhile shares it.
        const wait = this.lastEnd + this.lastTook - performance.now();
        return new Promise<void>((resolve) =>
          wait > 1 ? setTimeout(resolve, Math.min(wait, 50)) : setImmediate(resolve),
        );
      })
      .then(() => {
        // From here on a newcomer needs a later read: this one may have missed its socket.
        this.queued = undefined;
        const began = performance.now();
        const p = this.read();
        this.running = p;
        const clear = (): void => {
          this.lastEnd = performance.now();
          this.lastTook = this.lastEnd - began;
          if (this.running === p) this.running = undefined;
        };
        p.then(clear, clear);
        return p;
      });
    this.queued = queued;
    return queued;
  }
}

export interface AppIdentifierOptions {
  platform?: NodeJS.Platform;
  /** Answers are kept this long (ms); ports are reused, so keep it short. Default 2000. */
  ttlMs?: number;
  /** Root of the proc file system (tests point it elsewhere). Default /proc. */
  procRoot?: string;
  clock?: Clock;
  logger?: Logger;
}

/**
 * Process names that are not apps: a chain walk stops below them. Shells, terminal
 * emulators and multiplexers, init and service managers, session and display managers,
 * remote login, privilege tools.
 */
const BOUNDARY = new Set([
  'sh',
  'bash',
  'dash',
  'zsh',
  'fish',
  'ksh',
  'mksh',
  'tcsh',
  'csh',
  'nu',
  'pwsh',
  'elvish',
  'xonsh',
  'login',
  'sshd',
  'su',
  'sudo',
  'doas',
  'runuser',
  'setsid',
  'nohup',
  'env',
  'timeout',
  'xargs',
  'tmux',
  'tmux: server',
  'screen',
  'zellij',
  'mosh-server',
  'init',
  'systemd',
  'launchd',
  'upstart',
  'runit',
  'runsv',
  's6-supervise',
  'openrc',
  'containerd-shim',
  'tini',
  'dumb-init',
  'gnome-session',
  'gnome-session-binary',
  'gnome-shell',
  'ksmserver',
  'plasmashell',
  'kwin_x11',
  'kwin_wayland',
  'startplasma-x11',
  'startplasma-wayland',
  'xfce4-session',
  'lxsession',
  'mate-session',
  'cinnamon-session',
  'sway',
  'i3',
  'hyprland',
  'openbox',
  'xinit',
  'gdm',
  'gdm-session-worker',
  'lightdm',
  'sddm',
  'dbus-daemon',
  'dbus-broker',
  'gnome-terminal-server',
  'gnome-terminal',
  'konsole',
  'xterm',
  'urxvt',
  'rxvt',
  'alacritty',
  'kitty',
  'wezterm-gui',
  'terminator',
  'tilix',
  'xfce4-terminal',
  'foot',
  'st',
  'lxterminal',
  'mate-terminal',
  'guake',
  'yakuake',
  'terminal',
  'iterm2',
  'explorer.exe',
  'cmd.exe',
  'powershell.exe',
  'pwsh.exe',
  'conhost.exe',
  'windowsterminal.exe',
  'services.exe',
  'svchost.exe',
  'wininit.exe',
]);

/** Interpreters whose script is the app. */
const INTERPRETER =
  /^(node|nodejs|deno|bun|python[0-9.]*|pypy[0-9.]*|ruby[0-9.]*|perl[0-9.]*|php[0-9.]*|java|lua[0-9.]*|Rscript|osascript)$/i;

export function isBoundaryProcess(name: string): boolean {
  const base = basename(name.replaceAll('\\', '/')).toLowerCase();
  return BOUNDARY.has(base) || BOUNDARY.has(base.replace(/^-/, '')); // "-bash": a login shell
}

/** appId and display name from an executable and its arguments. */
export function appIdentity(
  exe: string,
  cmdline: readonly string[],
): { appId: string; name: string } {
  const exeName = basename(exe.replaceAll('\\', '/'));
  if (INTERPRETER.test(exeName)) {
    const script = scriptOf(exeName, cmdline);
    if (script !== undefined)
      return { appId: `${exe} ${script}`, name: basename(script.replace(/^-m /, '')) };
  }
  return { appId: exe, name: exeName };
}

/** The first argument that is not an option (and for java, the -jar file or main class). */
function scriptOf(exeName: string, cmdline: readonly string[]): string | undefined {
  const args = cmdline.slice(1);
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (/^java$/i.test(exeName) && a === '-jar') return args[i + 1];
    if (a === '-m' && /^python/i.test(exeName))
      return args[i + 1] === undefined ? undefined : `-m ${args[i + 1]}`;
    // Options that take a value (node --import x, java -cp x) would otherwise be read as the script.
    if (/^(--import|--require|-r|--loader|-cp|-classpath|--class-path|-e|--eval|-c)$/.test(a)) {
      if (a === '-e' || a === '--eval' || a === '-c') return undefined;
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return a;
  }
  return undefined;
}

// --- Linux /proc ----------------------------------------------------------------

/** One row of /proc/net/{tcp,udp}{,6}. */
export interface ProcNetEntry {
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  uid: number;
  inode: number;
}

/**
 * Parses /proc/net/tcp-style text. Addresses are hex in the kernel's byte order: one
 * 32-bit word per 4 bytes, each in host order (little-endian on every platform Node
 * runs on here), so "0100007F" is 127.0.0.1.
 */
export function parseProcNet(text: string): ProcNetEntry[] {
  const out: ProcNetEntry[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = parseHexEndpoint(f[1]!);
    const remote = parseHexEndpoint(f[2]!);
    const uid = Number(f[7]);
    const inode = Number(f[9]);
    if (local === undefined || remote === undefined || !Number.isInteger(inode)) continue;
    out.push({
      localAddress: local.address,
      localPort: local.port,
      remoteAddress: remote.address,
      remotePort: remote.port,
      uid,
      inode,
    });
  }
  return out;
}

function parseHexEndpoint(text: string): { address: string; port: number } | undefined {
  const [hex, portHex] = text.split(':');
  if (hex === undefined || portHex === undefined) return undefined;
  const port = parseInt(portHex, 16);
  if (hex.length === 8) {
    const word = parseInt(hex, 16);
    return {
      address: [word & 255, (word >>> 8) & 255, (word >>> 16) & 255, word >>> 24].join('.'),
      port,
    };
  }
  if (hex.length === 32) {
    const bytes = Buffer.alloc(16);
    for (let w = 0; w < 4; w++)
      bytes.writeUInt32LE(parseInt(hex.slice(w * 8, w * 8 + 8), 16) >>> 0, w * 4);
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    const text6 = groups.join(':');
    // Dual-stack sockets list IPv4 peers as IPv4-mapped IPv6; compare them as IPv4.
    if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff)
      return { address: `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`, port };
    return { address: canonicalIp(text6), port };
  }
  return undefined;
}

function canonicalIp(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m !== null) return m[1]!;
  if (!net.isIPv6(address)) return address;
  // Let the platform normalise (zero compression, case) through a SocketAddress.
  return new net.SocketAddress({ address, family: 'ipv6' }).address;
}

/** A connection's client end, as the caches key it. */
function endsKey(ends: SocketEnds): string {
  return `${ends.protocol}|${canonicalIp(ends.clientAddress)}|${ends.clientPort}`;
}

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
  exe?: string;
  cmdline: string[];
}

class LinuxIdentifier implements AppIdentifier {
  private readonly cache = new Map<string, { at: number; profile: AppProfile }>();
  /** One per /proc/net file; tcp6 and udp6 are read only when the IPv4 table has no match. */
  private readonly tables = new Map(
    ['tcp', 'tcp6', 'udp', 'udp6'].map((file) => [
      file,
      new FreshRead(() => Promise.resolve(this.readTable(file))),
    ]),
  );
  /** Per uid: one scan of that uid's processes, socket inode -> pid (see findPid). */
  private readonly scans = new Map<number, FreshRead<Map<number, number>>>();

  constructor(
    private readonly root: string,
    private readonly ttlMs: number,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /**
   * Sockets found by ownerUid, for identify() of the same connection moments later:
   * while the proxy's end is open the 4-tuple cannot belong to another socket.
   * Entries go when taken, or after the cache TTL.
   */
  private readonly found = new Map<string, { at: number; entry: ProcNetEntry }>();

  async ownerUid(ends: SocketEnds): Promise<number | undefined> {
    const entry = await this.findSocket(ends);
    if (entry !== undefined) {
      const now = this.clock.now();
      this.found.set(endsKey(ends), { at: now, entry });
      if (this.found.size > 1024)
        for (const [k, v] of this.found) if (now - v.at > this.ttlMs) this.found.delete(k);
    }
    return entry?.uid;
  }

  async identify(ends: SocketEnds): Promise<AppProfile> {
    const key = endsKey(ends);
    const hit = this.cache.get(key);
    const now = this.clock.now();
    if (hit !== undefined && now - hit.at < this.ttlMs) return hit.profile;
    const profile = await this.lookup(ends).catch((err: unknown) => {
      this.log.info('app identification failed', errorFields(err));
      return UNKNOWN_APP;
    });
    this.cache.set(key, { at: now, profile });
    if (this.cache.size > 4096) this.cache.delete(this.cache.keys().next().value!);
    return profile;
  }

  private async lookup(ends: SocketEnds): Promise<AppProfile> {
    const key = endsKey(ends);
    const known = this.found.get(key);
    this.found.delete(key);
    const entry =
      known !== undefined && this.clock.now() - known.at < this.ttlMs
        ? known.entry
        : await this.findSocket(ends);
    if (entry === undefined) return UNKNOWN_APP;
    const ownerPid = await this.findPid(entry.inode, entry.uid);
    if (ownerPid === undefined) return UNKNOWN_APP;
    const owner = this.readProc(ownerPid);
    if (owner === undefined) return UNKNOWN_APP;
    // Walk up while the parent is a process of the app (not a boundary, not init).
    let top = owner;
    for (let depth = 0; depth < 64 && top.ppid > 1; depth++) {
      const parent = this.readProc(top.ppid);
      if (
        parent === undefined ||
        isBoundaryProcess(parent.comm) ||
        isBoundaryProcess(parent.exe ?? '')
      )
        break;
      top = parent;
    }
    const exe = top.exe ?? top.cmdline[0] ?? top.comm;
    const { appId, name } = appIdentity(exe, top.cmdline);
    return { appId, name, pid: top.pid, ownerPid, exe, cmdline: top.cmdline };
  }

  /** /proc/net/<file> as the kernel lists it ("" when there is no such file). */
  private readTable(file: string): string {
    try {
      // Synchronous on purpose: the kernel renders these a page per read(2), and an
      // asynchronous read pays a thread-pool round trip per page (40-80 ms for a
      // thousand sockets against a few ms here).
      return readFileSync(`${this.root}/net/${file}`, 'utf8');
    } catch {
      return ''; // no IPv6 in this kernel: nothing to find there
    }
  }

  /**
   * The client's socket in the tables. Only rows whose text holds the client's port
   * (":XXXX " in hex) are parsed: a table lists thousands of TIME_WAIT rows on a busy
   * machine, and parsing them all cost more than reading them.
   */
  private async findSocket(ends: SocketEnds): Promise<ProcNetEntry | undefined> {
    const client = canonicalIp(ends.clientAddress);
    const proxy = ends.proxyAddress === undefined ? undefined : canonicalIp(ends.proxyAddress);
    const needle = `:${ends.clientPort.toString(16).toUpperCase().padStart(4, '0')} `;
    for (const file of ends.protocol === 'tcp' ? ['tcp', 'tcp6'] : ['udp', 'udp6']) {
      const text = await this.tables.get(file)!.get();
      for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + 1)) {
        const start = text.lastIndexOf('\n', at) + 1;
        const stop = text.indexOf('\n', at);
        // parseProcNet skips a first line (the header): give it an empty one.
        const [e] = parseProcNet('\n' + text.slice(start, stop < 0 ? undefined : stop));
        if (e === undefined || e.localPort !== ends.clientPort) continue;
        // inode 0: TIME_WAIT and the like, owned by no process (and listed as uid 0).
        if (e.inode === 0) continue;
        if (e.localAddress !== client && e.localAddress !== '0.0.0.0' && e.localAddress !== '::')
          continue;
        if (
          ends.protocol === 'tcp' &&
          ends.proxyPort !== undefined &&
          e.remotePort !== ends.proxyPort
        )
          continue;
        if (ends.protocol === 'tcp' && proxy !== undefined && e.remoteAddress !== proxy) continue;
        return e;
      }
    }
    return undefined;
  }

  /** Owners of recent sockets, most recent first: apps open connections in bursts. */
  private readonly recentPids: number[] = [];

  /**
   * The pid holding socket `inode`, among the processes of `uid` (others' fds are
   * unreadable anyway). Recent owners are tried first (one process's fds). Otherwise
   * one scan of the uid's processes maps every socket inode to its pid; scans are
   * coalesced (FreshRead), so a burst of connections whose owners are new, or which
   * closed before we looked, costs one or two scans, not one each. /proc reads are
   * cheap system calls with no disk behind them, so one process's fds are read
   * synchronously (asynchronous reads cost a thread-pool round trip each, 100+ ms for
   * a desktop's few thousand fds); the scan yields between processes so the proxy
   * keeps serving.
   */
  private async findPid(inode: number, uid: number): Promise<number | undefined> {
    const link = `socket:[${inode}]`;
    const holds = (pid: number): boolean => {
      const dir = `${this.root}/${pid}`;
      try {
        if (statSync(dir).uid !== uid) return false;
        for (const fd of readdirSync(`${dir}/fd`)) {
          try {
            if (readlinkSync(`${dir}/fd/${fd}`) === link) return true;
          } catch {
            continue; // the fd closed while we looked: not this one
          }
        }
      } catch {
        // The process exited while we looked, or is not ours: not the owner.
        return false;
      }
      return false;
    };
    let pid = this.recentPids.find(holds);
    if (pid === undefined) {
      let scan = this.scans.get(uid);
      if (scan === undefined) {
        scan = new FreshRead(() => this.scanSockets(uid));
        this.scans.set(uid, scan);
        if (this.scans.size > 64) this.scans.delete(this.scans.keys().next().value!);
      }
      pid = (await scan.get()).get(inode);
    }
    if (pid === undefined) return undefined;
    const i = this.recentPids.indexOf(pid);
    if (i >= 0) this.recentPids.splice(i, 1);
    this.recentPids.unshift(pid);
    if (this.recentPids.length > 16) this.recentPids.pop();
    return pid;
  }

  /** Socket inode -> pid for every process of `uid`. */
  private async scanSockets(uid: number): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    const pids = (await readdir(this.root)).filter((d) => /^\d+$/.test(d));
    for (let i = 0; i < pids.length; i++) {
      const dir = `${this.root}/${pids[i]}`;
      try {
        if (statSync(dir).uid !== uid) continue;
        for (const fd of readdirSync(`${dir}/fd`)) {
          let target: string;
          try {
            target = readlinkSync(`${dir}/fd/${fd}`);
          } catch {
            continue; // the fd closed while we looked
          }
          if (target.startsWith('socket:[')) out.set(Number(target.slice(8, -1)), Number(pids[i]));
        }
      } catch {
        continue; // the process exited while we looked, or its fds are not ours to read
      }
      if (i % 16 === 15) await new Promise((r) => setImmediate(r));
    }
    return out;
  }

  /** One process's stat, exe and cmdline: small in-memory files, read synchronously like the rest. */
  private readProc(pid: number): ProcInfo | undefined {
    const dir = `${this.root}/${pid}`;
    let statText: string;
    try {
      statText = readFileSync(`${dir}/stat`, 'utf8');
    } catch {
      return undefined; // exited
    }
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; cut at the last ')'.
    const open = statText.indexOf('(');
    const close = statText.lastIndexOf(')');
    const comm = statText.slice(open + 1, close);
    const ppid = Number(statText.slice(close + 2).split(' ')[1]);
    let exe: string | undefined;
    try {
      exe = readlinkSync(`${dir}/exe`);
    } catch {
      exe = undefined; // a kernel thread, or not ours to read
    }
    let cmdline: string[] = [];
    try {
      cmdline = readFileSync(`${dir}/cmdline`, 'utf8')
        .split('\0')
        .filter((a) => a.length > 0);
    } catch {
      cmdline = []; // exited meanwhile
    }
    return {
      pid,
      ppid: Number.isInteger(ppid) ? ppid : 0,
      comm,
      exe: exe?.replace(/ \(deleted\)$/, ''),
      cmdline,
    };
  }
}

// --- macOS and Windows (best effort) --------------------------------------------

function run(cmd: string, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 3000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout) =>
      resolve(err === null ? stdout : undefined),
    );
  });
}

class LsofIdentifier implements AppIdentifier {
  async identify(ends: SocketEnds): Promise<AppProfile> {
    // -F pcn: one field per line; p = pid, c = command, n = "local->remote".
    const out = await run('lsof', [
      '-nP',
      `-i${ends.protocol.toUpperCase()}:${ends.clientPort}`,
      '-Fpcn',
    ]);
    if (out === undefined) return UNKNOWN_APP;
    let pid: number | undefined;
    let comm = '';
    for (const line of out.split('\n')) {
      if (line.startsWith('p')) pid = Number(line.slice(1));
      else if (line.startsWith('c')) comm = line.slice(1);
      else if (
        line.startsWith('n') &&
        line.slice(1).split('->')[0]?.endsWith(`:${ends.clientPort}`)
      ) {
        if (pid === undefined || pid === process.pid) continue;
        const exe = (await run('ps', ['-o', 'comm=', '-p', String(pid)]))?.trim() || comm;
        const { appId, name } = appIdentity(exe, [exe]);
        return { appId, name, pid, ownerPid: pid, exe };
      }
    }
    return UNKNOWN_APP;
  }
}

class NetstatIdentifier implements AppIdentifier {
  async identify(ends: SocketEnds): Promise<AppProfile> {
    const out = await run('netstat', ['-ano', '-p', ends.protocol.toUpperCase()]);
    if (out === undefined) return UNKNOWN_APP;
    for (const line of out.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (
        f[0]?.toUpperCase() !== ends.protocol.toUpperCase() ||
        !f[1]?.endsWith(`:${ends.clientPort}`)
      )
        continue;
      const pid = Number(f[f.length - 1]);
      if (!Number.isInteger(pid) || pid === process.pid) continue;
      const list = await run('tasklist', ['/FI', `PID eq ${pid}`, '/FO', 'CSV', '/NH']);
      const image = /^"([^"]+)"/.exec(list?.trim() ?? '')?.[1] ?? `pid ${pid}`;
      return { appId: image, name: image, pid, ownerPid: pid, exe: image };
    }
    return UNKNOWN_APP;
  }
}

/** The identifier for this platform; anything without one answers UNKNOWN_APP. */
export function createAppIdentifier(options: AppIdentifierOptions = {}): AppIdentifier {
  const platform = options.platform ?? process.platform;
  const log = (options.logger ?? createLogger()).child({ component: 'app-identify' });
  switch (platform) {
    case 'linux':
      return new LinuxIdentifier(
        options.procRoot ?? '/proc',
        options.ttlMs ?? 2000,
        options.clock ?? systemClock,
        log,
      );
    case 'darwin':
      return new LsofIdentifier();
    case 'win32':
      return new NetstatIdentifier();
    default:
      return { identify: () => Promise.resolve(UNKNOWN_APP) };
  }
}
