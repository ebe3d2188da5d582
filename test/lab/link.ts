import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { BraidError, type ErrorCode } from '../../core/util/errors.js';
import type {
  ControlCommand,
  ControlReply,
  ForwarderConfig,
  LinkDir,
  LinkStats,
  ReadyEvent,
} from './link-control.js';
import type { DirectionParams, Trace } from './link-model.js';

/** Repository root: forwarders run with it as cwd so that `--import tsx` resolves. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const forwarderPath = fileURLToPath(new URL('./forwarder.ts', import.meta.url));

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Pending = { resolve: (reply: ControlReply) => void; reject: (err: unknown) => void };

/**
 * The lab's handle on one forwarder process: spawn it, wait until its TUN devices
 * exist, then change its parameters while traffic runs. The forwarder reads its
 * commands from our pipe, so it also dies with us.
 */
export class LinkHandle {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private exited = false;
  private readonly exitPromise: Promise<void>;

  private constructor(child: ChildProcess) {
    this.child = child;
    this.exitPromise = new Promise((resolve) => {
      child.once('exit', () => {
        this.exited = true;
        const err = new BraidError('BRAID_ERR_TRANSPORT', 'link forwarder exited', {
          value: child.pid,
        });
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  static async spawn(config: ForwarderConfig): Promise<LinkHandle> {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', forwarderPath, JSON.stringify(config)],
      {
        cwd: repoRoot,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    const handle = new LinkHandle(child);
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-4000);
    });
    const lines = createInterface({ input: child.stdout });
    await new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null): void =>
        reject(
          new BraidError(
            'BRAID_ERR_TRANSPORT',
            `link forwarder exited (${code}) before ready: ${stderr}`,
            {
              value: config.clientTun,
            },
          ),
        );
      child.once('exit', onExit);
      lines.once('line', (line) => {
        child.off('exit', onExit);
        const event = JSON.parse(line) as ReadyEvent;
        if (event.event !== 'ready') {
          reject(
            new BraidError('BRAID_ERR_TRANSPORT', 'unexpected first line from forwarder', {
              value: line,
            }),
          );
        } else {
          resolve();
        }
      });
    });
    lines.on('line', (line) => handle.onReply(line));
    return handle;
  }

  set(dir: LinkDir, params: Partial<DirectionParams>): Promise<void> {
    return this.request({ cmd: 'set', dir, params }).then(() => undefined);
  }

  setTrace(dir: LinkDir, trace: Trace | null): Promise<void> {
    return this.request({ cmd: 'trace', dir, trace }).then(() => undefined);
  }

  /** Black-holes both directions without any interface event. */
  down(): Promise<void> {
    return this.set('both', { down: true });
  }

  up(): Promise<void> {
    return this.set('both', { down: false });
  }

  /** Counters since the link started or since the last stats(true). */
  async stats(reset = false): Promise<LinkStats> {
    const reply = await this.request({ cmd: 'stats', reset });
    if (!reply.ok || reply.stats === undefined) {
      throw new BraidError('BRAID_ERR_INTERNAL', 'stats reply without stats', { value: reply });
    }
    return reply.stats;
  }

  /** Stops the forwarder; its TUN devices vanish with its file descriptors. */
  async close(): Promise<void> {
    if (this.exited) return;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await this.exitPromise;
    clearTimeout(timer);
  }

  /** For exit handlers: the forwarder exits on SIGTERM (or on end of its stdin). */
  killSync(): void {
    if (!this.exited) this.child.kill('SIGTERM');
  }

  private request(
    body: DistributiveOmit<ControlCommand, 'id'>,
  ): Promise<ControlReply & { ok: true }> {
    if (this.exited) {
      return Promise.reject(
        new BraidError('BRAID_ERR_TRANSPORT', 'link forwarder has exited', { value: this.pid }),
      );
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (reply) => {
          if (reply.ok) resolve(reply);
          else
            reject(
              new BraidError(
                reply.code as ErrorCode,
                `forwarder refused ${body.cmd}: ${reply.error}`,
              ),
            );
        },
        reject,
      });
      this.child.stdin!.write(JSON.stringify({ ...body, id }) + '\n');
    });
  }

  private onReply(line: string): void {
    const reply = JSON.parse(line) as ControlReply;
    const pending = this.pending.get(reply.id);
    if (pending === undefined) return;
    this.pending.delete(reply.id);
    pending.resolve(reply);
  }
}
