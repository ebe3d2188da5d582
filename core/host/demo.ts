import type { AppRule, UplinkKind } from './contract.js';
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
  rule: AppRule;
  transport: 'tcp' | 'udp';
  /** Mean offered rate (bytes/s) and how far it swings (fraction of the mean). */
  meanBps: number;
  swing: number;
  periodMs: number;
  /** Fraction of time the app is quiet (a browser between pages). */
  idleShare: number;
}

const rule = (r: Omit<AppRule, 'bypass'>): AppRule => ({ ...r, bypass: false });

export const DEMO_APPS: readonly DemoApp[] = [
  {
    rule: rule({
      appId: 'org.mozilla.firefox',
      name: 'Firefox',
      kind: 'interactive',
      udpSemantics: 'unreliable-unordered',
      priorities: ['latency', 'throughput'],
      lossVsThroughput: 0.5,
      latencyVsThroughput: 0.3,
    }),
    transport: 'tcp',
    meanBps: 250_000,
    swing: 0.8,
    periodMs: 9_000,
    idleShare: 0.25,
  },
  {
    rule: rule({
      appId: 'us.zoom.Zoom',
      name: 'Zoom',
      kind: 'realtime',
      udpSemantics: 'unreliable-ordered',
      priorities: ['jitter', 'latency', 'loss'],
      lossVsThroughput: 0.3,
      latencyVsThroughput: 0.1,
    }),
    transport: 'udp',
    meanBps: 120_000,
    swing: 0.3,
    periodMs: 15_000,
    idleShare: 0,
  },
  {
    rule: rule({
      appId: 'com.backblaze.bzbui',
      name: 'Backup',
      kind: 'bulk',
      udpSemantics: 'reliable-unordered',
      priorities: ['throughput', 'loss'],
      lossVsThroughput: 0.8,
      latencyVsThroughput: 0.9,
    }),
    transport: 'tcp',
    meanBps: 600_000,
    swing: 0.6,
    periodMs: 20_000,
    idleShare: 0,
  },
];
