import type { AppKind, UplinkKind } from './contract.js';
import type { DemoLinkProfile } from './demo-link.js';

/**
 * What the dashboard's demo mode runs: loopback "uplinks" (127.0.0.x needs no setup on
 * Linux) each behind an emulated link, and a few apps whose offered rate wanders, so
 * that every chart moves. The transports follow `npm run demo` (udp, udp, tcp).
 */
export interface DemoUplink {
  id: string;
  name: string;
  kind: UplinkKind;
  address: string;
  transport: 'udp' | 'tcp';
  link: DemoLinkProfile;
}

export const DEMO_UPLINKS: readonly DemoUplink[] = [
  {
    id: 'wlan0',
    name: 'Wi-Fi',
    kind: 'wifi',
    address: '127.0.0.2',
    transport: 'udp',
    link: { baseDelayMs: 9, delaySwingMs: 5, periodMs: 40_000, noiseMs: 4, lossRate: 0.004 },
  },
  {
    id: 'usb0',
    name: 'Phone (USB tethering)',
    kind: 'cellular',
    address: '127.0.0.3',
    transport: 'udp',
    link: { baseDelayMs: 28, delaySwingMs: 12, periodMs: 25_000, noiseMs: 10, lossRate: 0.015 },
  },
  {
    id: 'eth0',
    name: 'Cable',
    kind: 'ethernet',
    address: '127.0.0.4',
    transport: 'tcp',
    link: { baseDelayMs: 4, delaySwingMs: 1.5, periodMs: 60_000, noiseMs: 1, lossRate: 0 },
  },
  {
    id: 'wlan1',
    name: 'Wi-Fi dongle',
    kind: 'wifi',
    address: '127.0.0.5',
    transport: 'udp',
    link: { baseDelayMs: 15, delaySwingMs: 8, periodMs: 33_000, noiseMs: 6, lossRate: 0.008 },
  },
];

export interface DemoApp {
  appId: string;
  name: string;
  kind: AppKind;
  transport: 'tcp' | 'udp';
  /** Mean offered rate (bytes/s) and how far it swings (fraction of the mean). */
  meanBps: number;
  swing: number;
  periodMs: number;
  /** Fraction of time the app is quiet (a browser between pages). */
  idleShare: number;
}

/** Their rules start as core/proxy/rules.ts's defaults for their kind. */
export const DEMO_APPS: readonly DemoApp[] = [
  {
    appId: '/usr/lib/firefox/firefox',
    name: 'Firefox',
    kind: 'browser',
    transport: 'tcp',
    meanBps: 250_000,
    swing: 0.8,
    periodMs: 9_000,
    idleShare: 0.25,
  },
  {
    appId: '/opt/zoom/zoom',
    name: 'Zoom',
    kind: 'call',
    transport: 'udp',
    meanBps: 120_000,
    swing: 0.3,
    periodMs: 15_000,
    idleShare: 0,
  },
  {
    appId: '/usr/bin/syncthing',
    name: 'Syncthing',
    kind: 'sync',
    transport: 'tcp',
    meanBps: 600_000,
    swing: 0.6,
    periodMs: 20_000,
    idleShare: 0,
  },
];
