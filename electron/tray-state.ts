import type { Update } from '../core/host/contract.js';

/**
 * The tray icon's look as a union of states, as Mullvad's tray-icon-controller does
 * (DESIGN §1: the icon follows the state). Derived from the engine's update only, so
 * it is tested without Electron.
 * - ok: every enabled uplink is up;
 * - degraded: some enabled uplink is degraded or down while another works;
 * - bypass: the global bypass is on (traffic goes around Braid);
 * - offline: no uplink works, or the engine is not connected to its relay.
 */
export type TrayIconState = 'ok' | 'degraded' | 'bypass' | 'offline';
export const TRAY_ICON_STATES: readonly TrayIconState[] = ['ok', 'degraded', 'bypass', 'offline'];

export function trayStateOf(update: Update | undefined): TrayIconState {
  if (update === undefined) return 'offline';
  if (update.settings.globalBypass) return 'bypass';
  const enabled = update.uplinks.filter((u) => u.state !== 'disabled' && u.state !== 'standby');
  const working = enabled.filter((u) => u.state === 'up' || u.state === 'degraded');
  if (working.length === 0 || update.association !== 'active') return 'offline';
  return working.length === enabled.length && working.every((u) => u.state === 'up')
    ? 'ok'
    : 'degraded';
}

/** File name in assets/ of each state's icon (16 px, with a @2x beside it). */
export function trayIconFile(state: TrayIconState): string {
  return `tray-${state}.png`;
}

function rate(bps: number): string {
  const bits = bps * 8;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(1)} Gbit/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(1)} Mbit/s`;
  return `${(bits / 1e3).toFixed(0)} kbit/s`;
}

/** The menu's first line: state, uplinks, aggregate rate (DESIGN §1). */
export function statusLine(update: Update | undefined): string {
  const state = trayStateOf(update);
  if (update === undefined) return 'Braid: starting…';
  const { uplinksUp, uplinksTotal, upBps, downBps } = update.aggregate;
  const head: Record<TrayIconState, string> = {
    ok: 'Braid: all uplinks up',
    degraded: 'Braid: degraded',
    bypass: 'Braid: bypassed',
    offline: 'Braid: offline',
  };
  return `${head[state]} · ${uplinksUp}/${uplinksTotal} uplinks · ↑ ${rate(upBps)} ↓ ${rate(downBps)}`;
}

export type TrayMenuItem =
  | { kind: 'status'; label: string }
  | { kind: 'toggle'; id: 'bypass'; label: string; checked: boolean }
  | { kind: 'action'; id: 'open' | 'quit'; label: string }
  | { kind: 'separator' };

/** The tray menu as data; electron/tray.ts turns it into a Menu. */
export function trayMenu(update: Update | undefined): TrayMenuItem[] {
  return [
    { kind: 'status', label: statusLine(update) },
    { kind: 'separator' },
    {
      kind: 'toggle',
      id: 'bypass',
      label: 'Bypass Braid for every app',
      checked: update?.settings.globalBypass ?? false,
    },
    { kind: 'action', id: 'open', label: 'Open dashboard' },
    { kind: 'separator' },
    { kind: 'action', id: 'quit', label: 'Quit Braid' },
  ];
}
