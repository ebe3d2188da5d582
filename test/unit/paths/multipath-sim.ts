import { PathRecovery } from '../../../core/paths/path-recovery.js';
import { ManualClock } from '../../../core/util/clock.js';
import { BraidError } from '../../../core/util/errors.js';
import { CoupledGroup } from '../../../core/paths/coupled-congestion.js';
import { seededRandom } from '../../support/impaired-subflow.js';

export const MSS = 1200;

export interface LinkSpec {
  rateBps: number;
  /** One-way delay. */
  delayMs: number;
  queueBytes: number;
  /** Random loss probability per packet. */
  loss: number;
}

export interface FlowSpec {
  link: number;
  congestion: 'cubic' | 'newreno' | 'auto';
  /** Flows with the same group number are coupled (LIA); undefined = uncoupled. */
  group?: number;
}

interface Ev {
  t: number;
  seq: number;
  kind: 'arrive' | 'ack' | 'wake';
  flow: number;
  pn: number;
  ranges?: Array<{ first: number; last: number }>;
}

/** A binary min-heap of events by time (then insertion order). */
class Heap {
  private a: Ev[] = [];
  private seq = 0;
  get size(): number {
    return this.a.length;
  }
  peek(): Ev | undefined {
    return this.a[0];
  }
  push(e: Omit<Ev, 'seq'>): void {
    const a = this.a;
    a.push({ ...e, seq: this.seq++ });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[p]!, a[i]!)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): Ev | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
function less(x: Ev, y: Ev): boolean {
  return x.t < y.t || (x.t === y.t && x.seq < y.seq);
}

/**
 * Greedy flows over drop-tail links in simulated time: each flow is a PathRecovery
 * sender and receiver; packets serialise at the link rate, wait in its queue, may be
 * dropped at random, arrive after the one-way delay, and are acknowledged one by one
 * over an uncongested return path of the same delay.
 */
export function simulateFlows(opts: {
  links: LinkSpec[];
  flows: FlowSpec[];
  seconds: number;
  seed?: number;
  /** Bytes acked per flow are also counted from this time on (skip the start-up). */
  measureFromMs?: number;
  /** Groups link only flows found to share a bottleneck (the default), or every flow. */
  detectSharedBottleneck?: boolean;
}) {
  const clock = new ManualClock(0);
  const random = seededRandom(opts.seed ?? 1);
  const groups = new Map<number, CoupledGroup>();
  const flows = opts.flows.map((f) => {
    const snd = new PathRecovery<number>(
      { kind: 'udp', maxDatagramSize: MSS, congestion: f.congestion },
      clock,
    );
    if (f.group !== undefined) {
      let g = groups.get(f.group);
      if (g === undefined)
        groups.set(
          f.group,
          (g = new CoupledGroup({ detectSharedBottleneck: opts.detectSharedBottleneck })),
        );
      g.add(snd);
    }
    const rcv = new PathRecovery<number>({ kind: 'udp', maxDatagramSize: MSS }, clock);
    return { spec: f, snd, rcv, wakeAt: -1, measuredBytes: 0, ackedAtStart: 0 };
  });
  const linkFreeAt = opts.links.map(() => 0);
  const heap = new Heap();
  const from = opts.measureFromMs ?? 0;
  let measuring = from === 0;

  const trySend = (i: number): void => {
    const f = flows[i]!;
    const link = opts.links[f.spec.link]!;
    const now = clock.now();
    while (f.snd.sendAllowance() > 0) {
      const at = f.snd.nextSendTime(MSS, now);
      if (at > now) {
        if (f.wakeAt <= now) {
          f.wakeAt = at;
          heap.push({ t: at, kind: 'wake', flow: i, pn: -1 });
        }
        return;
      }
      const pn = f.snd.nextPacketNumber();
      f.snd.onPacketSent(pn, MSS, true, pn);
      const l = f.spec.link;
      const queued = Math.max(0, linkFreeAt[l]! - now) * (link.rateBps / 8000);
      if (random() < link.loss || queued + MSS > link.queueBytes) continue;
      linkFreeAt[l] = Math.max(now, linkFreeAt[l]!) + (MSS * 8000) / link.rateBps;
      heap.push({ t: linkFreeAt[l] + link.delayMs, kind: 'arrive', flow: i, pn });
    }
  };

  const end = opts.seconds * 1000;
  flows.forEach((_, i) => trySend(i));
  while (clock.now() < end) {
    if (!measuring && clock.now() >= from) {
      measuring = true;
      for (const f of flows) f.ackedAtStart = f.snd.bytesAcked;
    }
    let timerFlow = -1;
    let timerAt = Infinity;
    for (let i = 0; i < flows.length; i++) {
      const d = flows[i]!.snd.timerDeadline();
      if (d !== undefined && d < timerAt) {
        timerAt = d;
        timerFlow = i;
      }
    }
    const next = heap.peek();
    if (timerFlow >= 0 && (next === undefined || timerAt < next.t)) {
      clock.set(Math.max(clock.now(), timerAt));
      flows[timerFlow]!.snd.onTimer();
      trySend(timerFlow);
      continue;
    }
    if (next === undefined) break;
    heap.pop();
    clock.set(Math.max(clock.now(), next.t));
    const f = flows[next.flow]!;
    if (next.kind === 'arrive') {
      f.rcv.onPacketReceived(next.pn, true);
      const ack = f.rcv.buildAck(0)!;
      const link = opts.links[f.spec.link]!;
      heap.push({
        t: clock.now() + link.delayMs,
        kind: 'ack',
        flow: next.flow,
        pn: next.pn,
        ranges: ack.ranges,
      });
    } else if (next.kind === 'ack') {
      const r = f.snd.onAck(next.ranges ?? [], 0);
      if (r instanceof BraidError) throw r;
      trySend(next.flow);
    } else {
      f.wakeAt = -1;
      trySend(next.flow);
    }
  }
  const seconds = (end - from) / 1000;
  return flows.map((f) => ({
    goodputBps: ((f.snd.bytesAcked - f.ackedAtStart) * 8) / seconds,
    snd: f.snd,
    /** Flows its linked increase took in at the end, itself included (0: uncoupled). */
    linkedAtEnd: f.snd.coupling?.linkedCount(f.snd) ?? 0,
  }));
}
