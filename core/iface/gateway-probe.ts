import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { BraidError } from '../util/errors.js';
import { parseNeighbours } from './ip-json.js';

/**
 * Does an interface's gateway answer? Opening a UDP socket proves nothing (no packet
 * needs an answer), so the evidence is an ICMP echo reply (`ping -c1 -W1 -I <dev>`)
 * or, failing that, the kernel's neighbour entry for the gateway:
 *   REACHABLE            the gateway answered ARP/ND recently (RFC 4861 §7.3.2) → true
 *   FAILED, INCOMPLETE   it did not answer address resolution → false
 *   STALE, DELAY, PROBE, NOARP, PERMANENT, no entry → no evidence → undefined.
 * ping needs a raw socket (CAP_NET_RAW, or a setcap'd/setuid ping binary) unless
 * net.ipv4.ping_group_range admits the user's group (ICMP datagram sockets); where it
 * cannot run, only the neighbour entry speaks, and usually says "unknown".
 */
export interface GatewayProbeResult {
  reachable: boolean | undefined;
  /** Which evidence decided. */
  method: 'icmp' | 'neighbour' | 'none';
  /** Why, for the logs: ping's complaint or the neighbour state. */
  detail: string;
}

export interface GatewayProbeOptions {
  /** Path of ping; null when there is none. */
  ping: string | null;
  /** Path of ip; null when there is none. */
  ip: string | null;
  signal?: AbortSignal;
}

export function reachabilityFromNeighbour(state: readonly string[]): boolean | undefined {
  if (state.includes('REACHABLE')) return true;
  if (state.includes('FAILED') || state.includes('INCOMPLETE')) return false;
  return undefined;
}

interface RunResult {
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command; a non-zero exit is a result, failing to start is an error. */
export function runCommand(
  file: string,
  args: readonly string[],
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      {
        timeout: options.timeoutMs ?? 5000,
        maxBuffer: 16 * 1024 * 1024,
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ exitCode: 0, stdout, stderr });
          return;
        }
        if (typeof err.code === 'number') {
          resolve({ exitCode: err.code, stdout, stderr });
          return;
        }
        if (err.killed === true && err.code === null) {
          // Killed by the timeout (execFile sends SIGTERM and reports no exit code).
          resolve({ exitCode: null, stdout, stderr });
          return;
        }
        reject(
          new BraidError('BRAID_ERR_INTERNAL', `cannot run ${file} ${args.join(' ')}`, {
            value: err.code ?? err.name,
            cause: err,
          }),
        );
      },
    );
  });
}

/** The first executable named `name` on PATH (and the sbin folders ping and ip live in). */
export async function findExecutable(name: string): Promise<string | null> {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const extra of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    if (!dirs.includes(extra)) dirs.push(extra);
  }
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'EACCES' && code !== 'ENOTDIR') throw err;
    }
  }
  return null;
}

async function neighbourState(
  ip: string,
  device: string,
  gateway: string,
  signal: AbortSignal | undefined,
): Promise<string[] | undefined> {
  const r = await runCommand(ip, ['-json', 'neigh', 'show', 'to', gateway, 'dev', device], {
    ...(signal === undefined ? {} : { signal }),
  });
  // A non-zero exit here means the device vanished meanwhile: no evidence.
  if (r.exitCode !== 0) return undefined;
  return parseNeighbours(r.stdout).find((n) => n.dst === gateway)?.state;
}

export async function probeGateway(
  device: string,
  gateway: string,
  options: GatewayProbeOptions,
): Promise<GatewayProbeResult> {
  const { signal } = options;
  let pingDetail = 'no ping binary';
  let noReply = false;
  if (options.ping !== null) {
    // -n: no reverse lookup; -c1 -W1: one echo, one second (iputils and busybox agree).
    const r = await runCommand(options.ping, ['-n', '-c1', '-W1', '-I', device, gateway], {
      timeoutMs: 3000,
      ...(signal === undefined ? {} : { signal }),
    });
    if (r.exitCode === 0) return { reachable: true, method: 'icmp', detail: 'echo reply' };
    // iputils: exit 1 = no reply; 2 = could not ping (no permission, no route, bad device).
    noReply = r.exitCode === 1;
    pingDetail = noReply
      ? 'no echo reply within 1 s'
      : `ping failed (exit ${String(r.exitCode)}): ${r.stderr.trim().split('\n').join(' | ')}`;
  }
  if (options.ip !== null) {
    const state = await neighbourState(options.ip, device, gateway, signal);
    const fromNeighbour = state === undefined ? undefined : reachabilityFromNeighbour(state);
    const stateText = state === undefined ? 'no neighbour entry' : `neighbour ${state.join(',')}`;
    // A gateway that filters ICMP echo still answers address resolution.
    if (fromNeighbour === true) {
      return { reachable: true, method: 'neighbour', detail: `${pingDetail}; ${stateText}` };
    }
    if (noReply) return { reachable: false, method: 'icmp', detail: `${pingDetail}; ${stateText}` };
    if (fromNeighbour === false) {
      return { reachable: false, method: 'neighbour', detail: `${pingDetail}; ${stateText}` };
    }
    return { reachable: undefined, method: 'none', detail: `${pingDetail}; ${stateText}` };
  }
  if (noReply) return { reachable: false, method: 'icmp', detail: pingDetail };
  return { reachable: undefined, method: 'none', detail: pingDetail };
}
