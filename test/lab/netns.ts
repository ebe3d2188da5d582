import {
  execFile,
  spawn,
  spawnSync,
  type ChildProcess,
  type SpawnOptions,
} from 'node:child_process';
import { existsSync } from 'node:fs';
import { BraidError } from '../../core/util/errors.js';

/** Small wrappers over iproute2 and `ip netns exec`, with errors that carry the command. */

export function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(
          new BraidError(
            'BRAID_ERR_INTERNAL',
            `${cmd} ${args.join(' ')} failed: ${stderr.trim()}`,
            {
              cause: err,
            },
          ),
        );
      } else {
        resolve(stdout);
      }
    });
    if (input !== undefined) child.stdin!.end(input);
  });
}

export function ip(...args: string[]): Promise<string> {
  return run('ip', args);
}

/** Runs many `ip` commands in one process (`ip -batch`); each line is one command. */
export function ipBatch(lines: readonly string[], ns?: string): Promise<string> {
  const args = ns === undefined ? ['-batch', '-'] : ['-n', ns, '-batch', '-'];
  return run('ip', args, lines.join('\n') + '\n');
}

export function nsRun(ns: string, cmd: string, args: readonly string[]): Promise<string> {
  return run('ip', ['netns', 'exec', ns, cmd, ...args]);
}

export function nsSpawn(
  ns: string,
  cmd: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, cmd, ...args], options);
}

/** Synchronous `ip`, for exit handlers; failures are returned, not thrown. */
export function ipSync(args: readonly string[]): { ok: boolean; stdout: string; stderr: string } {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function listNamespaces(): string[] {
  const r = ipSync(['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => name !== '');
}

/** Kills every process left in `ns` (a killed run's servers), then deletes it. */
export function deleteNamespaceSync(ns: string): void {
  const pids = ipSync(['netns', 'pids', ns]);
  for (const pid of pids.stdout.split(/\s+/).filter((p) => p !== '')) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch (err) {
      // ESRCH: it exited between the listing and the kill.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  ipSync(['netns', 'del', ns]);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Why the lab cannot run here, or null when it can (root, TUN, iproute2, netns). */
export function labUnavailableReason(): string | null {
  if (process.platform !== 'linux') return `the lab needs Linux, this is ${process.platform}`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
    return 'the lab needs root (network namespaces and TUN devices)';
  }
  if (!existsSync('/dev/net/tun')) return 'the lab needs /dev/net/tun';
  if (spawnSync('ip', ['-V']).status !== 0) return 'the lab needs iproute2 (`ip`)';
  // The fidelity check and the lab's own tests ping across the emulated links; without
  // it the bench died mid-run with a stack trace (a fresh machine, before .ci/run).
  if (spawnSync('ping', ['-V']).status !== 0)
    return 'the lab needs ping (apt-get install iputils-ping)';
  return null;
}
