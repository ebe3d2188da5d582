import { describe, expect, it } from 'vitest';
import { isBraidError } from '../../core/util/errors.js';
import {
  directionParams,
  listScenarios,
  loadScenario,
  loadTrace,
  validateScenario,
  type Scenario,
} from './scenario.js';

describe('lab scenarios', () => {
  it('ships scenarios a to e (and the trace replay) as valid data files', () => {
    const names = listScenarios();
    for (const prefix of ['a-', 'b-', 'c-', 'd-', 'e-']) {
      expect(names.some((n) => n.startsWith(prefix))).toBe(true);
    }
    for (const name of names) {
      const s = loadScenario(name);
      expect(s.name).toBe(name);
      for (const up of s.uplinks)
        if (up.trace !== undefined) expect(loadTrace(up.trace).points.length).toBeGreaterThan(10);
    }
  });

  it('splits RTT and jitter evenly per direction and sizes the queue to one BDP', () => {
    const p = directionParams(
      { name: 'lte', rateMbps: 10, rttMs: 60, jitterMs: 10, loss: 0.01 },
      's2c',
    );
    expect(p.delayMs).toBe(30);
    expect(p.jitterMs).toBe(5);
    expect(p.lossRate).toBe(0.01);
    expect(p.rateBps).toBe(10e6);
    // 60 ms at 10 Mbit/s.
    expect(p.queueBytes).toBe(75_000);
    expect(p.reorder).toBe(false);
  });

  it('applies per-direction rates and explicit queue sizes', () => {
    const up = { name: 'dsl', rateMbps: 16, upRateMbps: 1, rttMs: 30, queueMs: 100 };
    expect(directionParams(up, 'c2s').rateBps).toBe(1e6);
    expect(directionParams(up, 'c2s').queueBytes).toBe(12_500);
    expect(directionParams(up, 's2c').rateBps).toBe(16e6);
    expect(directionParams({ ...up, queueBytes: 4000 }, 's2c').queueBytes).toBe(4000);
  });

  it('keeps scenario d as scenario b plus a 5 s Wi-Fi black hole', () => {
    const b = loadScenario('b-wifi-lte');
    const d = loadScenario('d-wifi-blackhole');
    expect(d.uplinks).toEqual(b.uplinks);
    const [down, up] = d.events!;
    expect(down!.set).toEqual({ down: true });
    expect(up!.set).toEqual({ down: false });
    expect(up!.atMs - down!.atMs).toBe(5000);
    expect(down!.atMs).toBeGreaterThan(0);
    expect(up!.atMs).toBeLessThan(d.durationMs);
  });

  it('reports a bad field with BRAID_ERR_CONFIG', () => {
    const good: Scenario = {
      name: 'x',
      description: 'x',
      durationMs: 5000,
      uplinks: [{ name: 'a', rateMbps: 10, rttMs: 20 }],
    };
    const bad: unknown[] = [
      { ...good, uplinks: [] },
      { ...good, uplinks: [{ name: 'a', rateMbps: -1, rttMs: 20 }] },
      { ...good, uplinks: [{ name: 'a', rateMbps: 10, rttMs: 20, loss: 2 }] },
      { ...good, uplinks: [good.uplinks[0], good.uplinks[0]] },
      { ...good, events: [{ atMs: 10, uplink: 'nope', set: { down: true } }] },
      { ...good, direction: 'sideways' },
    ];
    expect(validateScenario(good)).toEqual(good);
    for (const raw of bad) {
      let caught: unknown;
      try {
        validateScenario(raw);
      } catch (err) {
        caught = err;
      }
      expect(isBraidError(caught, 'BRAID_ERR_CONFIG')).toBe(true);
    }
  });
});
