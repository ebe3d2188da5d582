import type { ObjectiveScheduler, PathView, SchedContext } from '../../../core/sched/path-view.js';
import { createPathView } from '../../../core/sched/path-view.js';

/** A path view with sensible figures: 20 ms, 1 MB/s, no loss (well measured), room to send. */
export function view(id: number, over: Partial<PathView> = {}): PathView {
  return {
    ...createPathView(id),
    srtt: 20,
    rttvar: 2,
    jitter: 1,
    deliveryRate: 1e6,
    cwnd: 100_000,
    lossSamples: 10_000,
    ...over,
  };
}

/** Bytes each path id got over `picks` picks of `bytes`, the views held constant. */
export function shares(
  s: Pick<ObjectiveScheduler, 'pick'>,
  ctx: SchedContext,
  views: readonly PathView[],
  picks: number,
  bytes = 1200,
  now = 0,
): Map<number, number> {
  const out = new Map<number, number>();
  for (const v of views) out.set(v.id, 0);
  for (let i = 0; i < picks; i++) {
    const d = s.pick(ctx, views, bytes, now);
    if (d.index >= 0) out.set(d.pathId, out.get(d.pathId)! + bytes);
  }
  return out;
}

export function fraction(m: Map<number, number>, id: number): number {
  let total = 0;
  for (const v of m.values()) total += v;
  return total === 0 ? 0 : m.get(id)! / total;
}
