import type { PathView } from '../../core/host/contract';

export function formatRate(bps: number): string {
  const bits = bps * 8;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(2)} Gbit/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(1)} Mbit/s`;
  if (bits >= 1e3) return `${(bits / 1e3).toFixed(0)} kbit/s`;
  return `${bits.toFixed(0)} bit/s`;
}

export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} kB`;
  return `${n} B`;
}

export function formatMs(ms: number | null): string {
  return ms === null ? '—' : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

export function formatPercent(rate: number | null, digits = 1): string {
  return rate === null ? '—' : `${(rate * 100).toFixed(digits)} %`;
}

/**
 * How an uplink's path is congestion-controlled, for the Uplinks view: its controller,
 * whether it is coupled with the other paths (LIA), and which uplinks' paths it was
 * measured to share a bottleneck with. '—' when the uplink has no live path.
 */
export function describeCongestion(
  path: PathView | undefined,
  paths: readonly PathView[],
  uplinkName: (uplinkId: string) => string,
): string {
  if (path === undefined) return '—';
  // A TCP path's window is the kernel's; Braid's controller runs on UDP paths only.
  if (path.transport === 'tcp') return 'kernel TCP';
  const parts = [path.controller === 'newreno' ? 'NewReno' : path.controller.toUpperCase()];
  if (path.coupled) parts.push('coupled');
  const shared = path.sharedBottleneckWith
    .map((id) => paths.find((p) => p.id === id))
    .filter((p): p is PathView => p !== undefined)
    .map((p) => uplinkName(p.uplinkId));
  if (shared.length > 0) parts.push(`shares a bottleneck with ${shared.join(', ')}`);
  return parts.join(' · ');
}
