import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { seededRandom } from '../link-model.js';
import type { TraceFile } from '../scenario.js';

/**
 * Writes the two synthetic traces beside this file (`npx tsx test/lab/traces/make-traces.ts`).
 * They are seeded random walks shaped after published measurements of the two
 * settings, not recordings: a commuter's LTE link swings over an order of magnitude
 * in rate with a handover stall every ~20 s; a congested café Wi-Fi shares its
 * airtime with other users, so its rate drops and its queueing delay and loss rise
 * in busy spells of a few seconds.
 */

const STEP_MS = 500;
const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));
const round = (v: number, digits: number): number => Number(v.toFixed(digits));

function commuterLte(): TraceFile {
  const random = seededRandom(20240501);
  const points: TraceFile['points'] = [];
  let rate = 12;
  let rtt = 70;
  for (let t = 0; t < 60_000; t += STEP_MS) {
    const handover = t % 20_000 >= 14_000 && t % 20_000 < 14_000 + 1_000;
    rate = clamp(rate * Math.exp((random() - 0.5) * 0.5), 2, 30);
    rtt = clamp(rtt + (random() - 0.5) * 20, 45, 160);
    points.push(
      handover
        ? { atMs: t, rateMbps: 0.3, rttMs: 400, loss: 0.05 }
        : {
            atMs: t,
            rateMbps: round(rate, 2),
            rttMs: round(rtt, 1),
            loss: round(0.002 + random() * 0.008, 4),
          },
    );
  }
  return {
    description: 'Synthetic commuter LTE: 2-30 Mbit/s, 45-160 ms, a 1 s handover stall every 20 s',
    loopMs: 60_000,
    points,
  };
}

function cafeWifi(): TraceFile {
  const random = seededRandom(7031);
  const points: TraceFile['points'] = [];
  let busy = false;
  for (let t = 0; t < 60_000; t += STEP_MS) {
    // Busy spells start and end at random, a few seconds long on average.
    if (random() < (busy ? 0.15 : 0.08)) busy = !busy;
    const rate = busy ? 2 + random() * 6 : 15 + random() * 10;
    const rtt = busy ? 60 + random() * 80 : 20 + random() * 15;
    const loss = busy ? 0.01 + random() * 0.02 : random() * 0.002;
    points.push({ atMs: t, rateMbps: round(rate, 2), rttMs: round(rtt, 1), loss: round(loss, 4) });
  }
  return {
    description:
      'Synthetic congested café Wi-Fi: 15-25 Mbit/s 20-35 ms, busy spells at 2-8 Mbit/s 60-140 ms 1-3% loss',
    loopMs: 60_000,
    points,
  };
}

const dir = fileURLToPath(new URL('./', import.meta.url));
writeFileSync(`${dir}commuter-lte.json`, JSON.stringify(commuterLte(), null, 0) + '\n');
writeFileSync(`${dir}cafe-wifi.json`, JSON.stringify(cafeWifi(), null, 0) + '\n');
