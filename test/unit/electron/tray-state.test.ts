import { describe, expect, it } from 'vitest';
import type { Update, UplinkState, UplinkView } from '../../../core/host/contract.js';
import {
  statusLine,
  trayIconFile,
  trayMenu,
  trayStateOf,
  TRAY_ICON_STATES,
} from '../../../electron/tray-state.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

function uplink(id: string, state: UplinkState): UplinkView {
  return {
    id,
    name: id,
    kind: 'wifi',
    address: '127.0.0.2',
    transport: 'udp',
    state,
    role: state === 'disabled' ? 'never' : state === 'standby' ? 'backup' : 'primary',
    latencyMs: 10,
    jitterMs: 1,
    lossRate: 0,
    upBps: 1000,
    downBps: 2000,
    usedBytes: 0,
    capBytes: null,
    pathIds: [],
  };
}

function update(
  states: UplinkState[],
  opts: { bypass?: boolean; association?: Update['association'] } = {},
): Update {
  const uplinks = states.map((s, i) => uplink(`u${i}`, s));
  return {
    seq: 1,
    at: 0,
    mode: 'demo',
    association: opts.association ?? 'active',
    uplinks,
    paths: [],
    sessions: [],
    apps: [],
    aggregate: {
      upBps: 150_000,
      downBps: 1_250_000,
      uplinksUp: states.filter((s) => s === 'up' || s === 'degraded').length,
      uplinksTotal: states.length,
    },
    settings: {
      relayInvite: null,
      proxyPort: 1080,
      launchAtLogin: false,
      globalBypass: opts.bypass ?? false,
      launchAtLoginSupported: true,
    },
    events: [],
    warnings: [],
  };
}

describe('tray icon state', () => {
  it.each([
    ['every uplink up', update(['up', 'up', 'up']), 'ok'],
    [
      'a disabled and a standby uplink do not count against ok',
      update(['up', 'disabled', 'standby']),
      'ok',
    ],
    ['one uplink degraded', update(['up', 'degraded']), 'degraded'],
    ['one uplink down while another works', update(['up', 'down']), 'degraded'],
    ['no uplink works', update(['down', 'down']), 'offline'],
    ['only disabled uplinks', update(['disabled']), 'offline'],
    [
      'uplinks up but the association orphaned',
      update(['up'], { association: 'orphaned' }),
      'offline',
    ],
    ['the global bypass on, whatever the uplinks', update(['down'], { bypass: true }), 'bypass'],
    ['no update yet', undefined, 'offline'],
  ] as const)('%s → %s', (_what, u, state) => {
    expect(trayStateOf(u)).toBe(state);
  });

  it('has an icon file in assets/ for each state, at 1x and 2x', () => {
    for (const s of TRAY_ICON_STATES) {
      const file = join(process.cwd(), 'assets', trayIconFile(s));
      expect(existsSync(file), file).toBe(true);
      expect(existsSync(file.replace('.png', '@2x.png'))).toBe(true);
    }
  });

  it('builds the menu: status line, global bypass, open dashboard, quit', () => {
    const menu = trayMenu(update(['up', 'up'], { bypass: true }));
    expect(menu.map((m) => m.kind)).toEqual([
      'status',
      'separator',
      'toggle',
      'action',
      'separator',
      'action',
    ]);
    expect(menu[0]).toEqual({
      kind: 'status',
      label: statusLine(update(['up', 'up'], { bypass: true })),
    });
    expect(menu[2]).toMatchObject({ id: 'bypass', checked: true });
    expect(menu.filter((m) => m.kind === 'action').map((m) => m.kind === 'action' && m.id)).toEqual(
      ['open', 'quit'],
    );
  });

  it('says state, uplinks and aggregate rate in the status line', () => {
    expect(statusLine(update(['up', 'down']))).toBe(
      'Braid: degraded · 1/2 uplinks · ↑ 1.2 Mbit/s ↓ 10.0 Mbit/s',
    );
    expect(statusLine(undefined)).toBe('Braid: starting…');
  });
});
