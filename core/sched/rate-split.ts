import type { Path } from '../session/path.js';

/** Bytes handed out per round to the fastest path; slower paths get a proportional share. */
const QUANTUM = 64 * 1024;

/**
 * The foundation's scheduler: deficit round robin with quanta proportional to each
 * path's rate (paper §III-B, "a modified deficit-round-robin algorithm where quanta
 * are a function of the achievable throughput on each path"; DESIGN §3).
 *
 * A path's rate is the larger of its measured delivery rate and what its congestion
 * window allows per RTT: the delivery rate alone would starve a path that was given
 * little (its samples are application-limited and stay low), while the window keeps
 * growing on a path with room. Only paths that may send now take part (active,
 * transport not blocked, congestion window open, pacer ready), so a slow path
 * never gets more than it can carry. The objective-driven schedulers come with the
 * semantics issue.
 */
export function pathRate(p: Path): number {
  const r = p.recovery;
  const srttMs = r.hasRttSample ? Math.max(r.srtt, 0.05) : 100;
  return Math.max(r.deliveryRate, (r.cwnd / srttMs) * 1000);
}

export function pickPath(paths: readonly Path[], now: number): Path | undefined {
  let best: Path | undefined;
  let eligible = 0;
  let maxRate = 0;
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i]!;
    p.schedEligible = false;
    if (!p.usable) continue;
    const r = p.recovery;
    if (r.sendAllowance() <= 0) continue;
    if (r.nextSendTime(p.maxPacketSize, now) > now) continue;
    p.schedEligible = true;
    eligible++;
    const rate = pathRate(p);
    if (rate > maxRate) maxRate = rate;
    if (p.schedCredit > 0 && (best === undefined || p.schedCredit > best.schedCredit)) best = p;
  }
  if (best !== undefined || eligible === 0) return best;
  // Every eligible path spent its quantum: start a new round.
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i]!;
    if (!p.schedEligible) continue;
    p.schedCredit += (QUANTUM * pathRate(p)) / maxRate;
    if (best === undefined || p.schedCredit > best.schedCredit) best = p;
  }
  return best;
}

/** Charges a path for the bytes it was given. */
export function chargePath(p: Path, bytes: number): void {
  p.schedCredit -= bytes;
}
