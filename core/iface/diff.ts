import { sameUplink, uplinkKey, type Uplink } from './uplink.js';

export type UplinkChange =
  | { type: 'removed'; uplink: Uplink }
  | { type: 'changed'; uplink: Uplink; previous: Uplink }
  | { type: 'added'; uplink: Uplink };

/**
 * Events that turn `previous` into `next`. Only the two states are compared, never the
 * events that led between them, which is what makes a burst of netlink events safe:
 * however many arrive, one re-read and one diff give the final state.
 * Order: removals, then changes, then additions, each by interface index.
 */
export function diffUplinks(previous: readonly Uplink[], next: readonly Uplink[]): UplinkChange[] {
  const before = new Map(previous.map((u) => [uplinkKey(u), u]));
  const after = new Map(next.map((u) => [uplinkKey(u), u]));
  const removed: UplinkChange[] = [];
  const changed: UplinkChange[] = [];
  const added: UplinkChange[] = [];
  for (const [key, u] of before) {
    if (!after.has(key)) removed.push({ type: 'removed', uplink: u });
  }
  for (const [key, u] of after) {
    const old = before.get(key);
    if (old === undefined) added.push({ type: 'added', uplink: u });
    else if (!sameUplink(old, u)) changed.push({ type: 'changed', uplink: u, previous: old });
  }
  const byIndex = (a: UplinkChange, b: UplinkChange): number =>
    a.uplink.index - b.uplink.index || (a.uplink.name < b.uplink.name ? -1 : 1);
  return [...removed.sort(byIndex), ...changed.sort(byIndex), ...added.sort(byIndex)];
}
