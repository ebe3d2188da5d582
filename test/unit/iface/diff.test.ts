import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { diffUplinks, type UplinkChange } from '../../../core/iface/diff.js';
import { freezeUplink, sameUplink, uplinkKey, type Uplink } from '../../../core/iface/uplink.js';

const base = (over: Partial<Uplink> = {}): Uplink =>
  freezeUplink({
    name: 'up0',
    index: 3,
    kind: 'ethernet',
    addresses: [{ address: '10.0.0.2', family: 4, prefixLength: 24 }],
    up: true,
    ignored: false,
    ...over,
  });

/** Applies a diff to a state, as a listener that keeps its own map would. */
function applyChanges(state: readonly Uplink[], changes: readonly UplinkChange[]): Uplink[] {
  const map = new Map(state.map((u) => [uplinkKey(u), u]));
  for (const c of changes) {
    if (c.type === 'removed') map.delete(uplinkKey(c.uplink));
    else map.set(uplinkKey(c.uplink), c.uplink);
  }
  return [...map.values()];
}

describe('diffUplinks', () => {
  it('reports nothing for equal states, whatever the address order', () => {
    const a = base({
      addresses: [
        { address: 'fd00::2', family: 6, prefixLength: 64 },
        { address: '10.0.0.2', family: 4, prefixLength: 24 },
      ],
    });
    const b = { ...a, addresses: [...a.addresses].reverse() };
    expect(diffUplinks([a], [b])).toEqual([]);
  });

  it('reports an added, a removed and a changed interface, removals first', () => {
    const up0 = base();
    const up1 = base({ name: 'up1', index: 4 });
    const up0b = base({ addresses: [{ address: '10.0.0.3', family: 4, prefixLength: 24 }] });
    const up2 = base({ name: 'up2', index: 5, kind: 'wifi' });
    const changes = diffUplinks([up0, up1], [up0b, up2]);
    expect(changes.map((c) => [c.type, c.uplink.name])).toEqual([
      ['removed', 'up1'],
      ['changed', 'up0'],
      ['added', 'up2'],
    ]);
    expect(changes[1]).toMatchObject({ previous: up0, uplink: up0b });
  });

  it('sees each field: up, gateway, reachability, kind, ignored, prefix length', () => {
    const a = base({ gateway: '10.0.0.1' });
    const variants: Uplink[] = [
      base({ gateway: '10.0.0.1', up: false }),
      base({ gateway: '10.0.0.254' }),
      base({ gateway: '10.0.0.1', gatewayReachable: true }),
      base({ gateway: '10.0.0.1', kind: 'cellular' }),
      base({ gateway: '10.0.0.1', ignored: true }),
      base({
        gateway: '10.0.0.1',
        addresses: [{ address: '10.0.0.2', family: 4, prefixLength: 16 }],
      }),
    ];
    for (const v of variants) {
      expect(diffUplinks([a], [v]).map((c) => c.type)).toEqual(['changed']);
    }
  });

  it('treats a device deleted and re-created under the same name as a new interface', () => {
    const old = base({ index: 3 });
    const recreated = base({ index: 9 });
    expect(diffUplinks([old], [recreated]).map((c) => [c.type, c.uplink.index])).toEqual([
      ['removed', 3],
      ['added', 9],
    ]);
  });

  it('brings any state to any other: applying the diff gives exactly the new state', () => {
    const address = fc.record({
      address: fc.constantFrom('10.0.0.1', '10.0.0.2', 'fd00::1', 'fe80::1'),
      family: fc.constantFrom(4 as const, 6 as const),
      prefixLength: fc.constantFrom(24, 64),
    });
    const uplink = fc
      .record({
        index: fc.integer({ min: 1, max: 6 }),
        kind: fc.constantFrom('wifi' as const, 'ethernet' as const, 'cellular' as const),
        addresses: fc.uniqueArray(address, { selector: (a) => a.address, maxLength: 3 }),
        up: fc.boolean(),
        gateway: fc.option(fc.constantFrom('10.0.0.1', '10.0.0.254'), { nil: undefined }),
        gatewayReachable: fc.option(fc.boolean(), { nil: undefined }),
        ignored: fc.boolean(),
      })
      .map((u) => freezeUplink({ ...u, name: `if${u.index}` }));
    const state = fc.uniqueArray(uplink, { selector: (u) => u.index, maxLength: 6 });
    fc.assert(
      fc.property(fc.array(state, { minLength: 2, maxLength: 8 }), (states) => {
        // A listener following every diff of a burst ends in the final state.
        let view: Uplink[] = states[0]!;
        for (let i = 1; i < states.length; i++) {
          view = applyChanges(view, diffUplinks(states[i - 1]!, states[i]!));
        }
        const final = states[states.length - 1]!;
        const byKey = new Map(view.map((u) => [uplinkKey(u), u]));
        expect(byKey.size).toBe(final.length);
        for (const u of final) expect(sameUplink(byKey.get(uplinkKey(u))!, u)).toBe(true);
        // And the one diff from first to last says the same.
        const direct = applyChanges(states[0]!, diffUplinks(states[0]!, final));
        expect(direct.length).toBe(final.length);
      }),
      { numRuns: 300 },
    );
  });
});
