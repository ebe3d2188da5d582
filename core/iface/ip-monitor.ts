import { spawn, type ChildProcess } from 'node:child_process';
import { BraidError } from '../util/errors.js';
import { errorFields, type Logger } from '../util/log.js';
import type { Clock } from '../util/clock.js';

/**
 * Keeps `ip monitor` running and turns its output into wake-ups. Its output is not
 * parsed: `ip -json monitor` prints text on iproute2 6.1 (JSON only on later
 * versions), and no version gives the complete state of an interface in one message.
 * Each chunk only says "netlink reported something"; the watcher then re-reads the
 * state with `ip -json ... show`. Hence no -json here: it would add nothing but the
 * risk of an old `ip` refusing the option.
 */
export interface IpMonitorOptions {
  ip: string;
  /** Groups to listen to; `neigh` is left out, its churn says nothing about uplinks. */
  args?: readonly string[];
  logger: Logger;
  clock: Clock;
  /** Something changed (or may have: ip complained on stderr, e.g. a netlink overrun). */
  onEvent: () => void;
  /** The monitor was restarted after dying: events in between are lost, re-read. */
  onRestart: () => void;
  restartMinMs?: number;
  restartMaxMs?: number;
}

const DEFAULT_ARGS = ['monitor', 'link', 'address', 'route'] as const;
/** A monitor that lived this long died of something new: restart quickly again. */
const HEALTHY_UPTIME_MS = 10_000;
const STDERR_TAIL = 2048;

export class IpMonitor {
  private child: ChildProcess | undefined;
  private stopping = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private restartDelayMs: number;
  private readonly args: readonly string[];
  private readonly restartMinMs: number;
  private readonly restartMaxMs: number;
  /** How many times the monitor was restarted after dying (for tests and the UI). */
  restarts = 0;

  constructor(private readonly options: IpMonitorOptions) {
    this.args = options.args ?? DEFAULT_ARGS;
    this.restartMinMs = options.restartMinMs ?? 250;
    this.restartMaxMs = options.restartMaxMs ?? 10_000;
    this.restartDelayMs = this.restartMinMs;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Resolves once the process runs; rejects if it cannot be started. */
  start(): Promise<void> {
    this.stopping = false;
    return this.spawnChild();
  }

  private spawnChild(): Promise<void> {
    return new Promise((resolve, reject) => {
      const { ip, logger, clock } = this.options;
      const child = spawn(ip, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const startedAt = clock.now();
      let spawned = false;
      let stderrTail = '';
      child.stdout.on('data', () => this.options.onEvent());
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL);
        logger.warn('ip monitor complained; re-reading state', { stderr: chunk.trim() });
        this.options.onEvent();
      });
      child.once('spawn', () => {
        spawned = true;
        this.child = child;
        resolve();
      });
      child.once('error', (err) => {
        if (!spawned) {
          reject(
            new BraidError('BRAID_ERR_INTERNAL', `cannot start ${ip} ${this.args.join(' ')}`, {
              value: (err as NodeJS.ErrnoException).code,
              cause: err,
            }),
          );
          return;
        }
        logger.error('ip monitor process error', errorFields(err));
      });
      child.once('exit', (code, signal) => {
        if (this.child === child) this.child = undefined;
        if (!spawned || this.stopping) return;
        const uptimeMs = clock.now() - startedAt;
        if (uptimeMs >= HEALTHY_UPTIME_MS) this.restartDelayMs = this.restartMinMs;
        logger.warn('ip monitor exited; restarting', {
          code,
          signal,
          uptimeMs: Math.round(uptimeMs),
          restartInMs: this.restartDelayMs,
          stderr: stderrTail.trim() === '' ? undefined : stderrTail.trim(),
        });
        this.scheduleRestart();
      });
    });
  }

  private scheduleRestart(): void {
    const delay = this.restartDelayMs;
    this.restartDelayMs = Math.min(this.restartDelayMs * 2, this.restartMaxMs);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.stopping) return;
      this.spawnChild().then(
        () => {
          this.restarts++;
          this.options.logger.info('ip monitor restarted', { pid: this.child?.pid });
          this.options.onRestart();
        },
        (err: unknown) => {
          this.options.logger.error('ip monitor restart failed', {
            ...errorFields(err),
            retryInMs: this.restartDelayMs,
          });
          this.scheduleRestart();
        },
      );
    }, delay);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer !== undefined) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => child.kill('SIGKILL'), 2000);
      child.once('exit', () => {
        clearTimeout(force);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
