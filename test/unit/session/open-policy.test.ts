import { describe, expect, it } from 'vitest';
import { policyFromWire, policyToWire } from '../../../core/session/session.js';
import { decodeFrames } from '../../../core/wire/decode.js';
import { encodeFrames } from '../../../core/wire/encode.js';

describe('OPEN policy: app sliders and tolerances to wire units and back', () => {
  it('round-trips sliders, ε in ms and loss through OPEN_POLICY', () => {
    const policy = {
      lossVsThroughput: 0.75,
      latencyVsThroughput: 0,
      epsilon: { latencyMs: 5, jitterMs: 0.25, loss: 0.005 },
    };
    const wire = policyToWire(policy)!;
    expect(wire).toEqual({
      lossVsThroughputPpm: 750_000,
      latencyVsThroughputPpm: 0,
      epsilonLatencyMicros: 5000,
      epsilonJitterMicros: 250,
      epsilonLossPpm: 5000,
    });
    const bytes = encodeFrames([
      {
        type: 'open',
        sessionId: 3,
        semantics: 'unreliable-ordered',
        priorities: ['latency'],
        target: '',
        deadlineMs: 100,
        policy: wire,
      },
    ]);
    const r = decodeFrames(bytes);
    expect(r.ok).toBe(true);
    const open = r.ok ? r.value[0] : undefined;
    expect(open?.type === 'open' && policyFromWire(open.policy!)).toEqual(policy);
  });

  it('sends nothing when the app set nothing, and keeps only what was set', () => {
    expect(policyToWire({})).toBeUndefined();
    expect(policyToWire({ latencyVsThroughput: 1 })).toEqual({ latencyVsThroughputPpm: 1_000_000 });
    expect(policyFromWire({ epsilonLossPpm: 1 })).toEqual({ epsilon: { loss: 1e-6 } });
    // A tolerance too small for the wire unit is sent as the smallest positive value.
    expect(policyToWire({ epsilon: { latencyMs: 1e-6 } })).toEqual({ epsilonLatencyMicros: 1 });
  });
});
