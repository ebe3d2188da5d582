import { describe, expect, it } from 'vitest';
import {
  answerInvoke,
  callFromChannel,
  channelOf,
  createApi,
  INVOKE_NAMES,
  ipcSchema,
  NOTIFY_NAMES,
  type Handlers,
  type RendererTransport,
} from '../../../core/host/contract.js';

/** Handlers that record what reached them, for the contract's own plumbing. */
function recordingHandlers(calls: Array<[string, unknown]>): Handlers {
  const h = {} as Record<string, (a: unknown) => unknown>;
  for (const name of INVOKE_NAMES) {
    h[name] = (arg: unknown) => {
      calls.push([name, arg]);
      if (name === 'setUplink' && (arg as { uplinkId: string }).uplinkId === 'boom')
        throw new Error('no such uplink');
      return name === 'setAppRule' ? { ...(arg as object), echoed: true } : null;
    };
  }
  return h as unknown as Handlers;
}

describe('the engine–UI contract', () => {
  it('declares every call once and derives channels from the names', () => {
    expect(INVOKE_NAMES).toEqual([
      'getSnapshot',
      'setAppRule',
      'setUplink',
      'setBypass',
      'setRelaySettings',
      'setSettings',
    ]);
    expect(NOTIFY_NAMES).toEqual(['update']);
    for (const name of Object.keys(ipcSchema) as Array<keyof typeof ipcSchema>)
      expect(channelOf(name)).toBe(`braid:${name}`);
    expect(callFromChannel('braid:setBypass')).toBe('setBypass');
    expect(callFromChannel('braid:update')).toBeUndefined();
    expect(callFromChannel('other:setBypass')).toBeUndefined();
  });

  it('passes a valid argument to the handler and answers success', async () => {
    const calls: Array<[string, unknown]> = [];
    const answer = await answerInvoke(recordingHandlers(calls), 'setAppRule', {
      appId: 'org.mozilla.firefox',
      lossVsThroughput: 0.25,
      priorities: ['latency', 'loss', 'jitter', 'throughput'],
    });
    expect(answer).toEqual({
      type: 'success',
      value: {
        appId: 'org.mozilla.firefox',
        lossVsThroughput: 0.25,
        priorities: ['latency', 'loss', 'jitter', 'throughput'],
        echoed: true,
      },
    });
    expect(calls).toHaveLength(1);
  });

  it.each([
    [
      'a slider out of range',
      'setAppRule',
      { appId: 'a', lossVsThroughput: 1.5 },
      'lossVsThroughput',
    ],
    [
      'a slider that is not a number',
      'setAppRule',
      { appId: 'a', latencyVsThroughput: '0.5' },
      'latencyVsThroughput',
    ],
    ['NaN', 'setAppRule', { appId: 'a', lossVsThroughput: NaN }, 'lossVsThroughput'],
    [
      'a repeated objective',
      'setAppRule',
      { appId: 'a', priorities: ['loss', 'loss', 'latency', 'jitter'] },
      'priorities[1]',
    ],
    [
      'an unknown objective',
      'setAppRule',
      { appId: 'a', priorities: ['speed', 'loss', 'latency', 'jitter'] },
      'priorities[0]',
    ],
    ['no objective', 'setAppRule', { appId: 'a', priorities: [] }, 'priorities'],
    [
      'a ranking without jitter',
      'setAppRule',
      { appId: 'a', priorities: ['loss', 'latency', 'throughput'] },
      'priorities',
    ],
    ['an unknown field', 'setAppRule', { appId: 'a', bypas: true }, 'bypas'],
    ['a missing app id', 'setAppRule', { bypass: true }, 'appId'],
    ['an app id with a space', 'setAppRule', { appId: 'a b' }, 'appId'],
    ['an unknown role', 'setUplink', { uplinkId: 'wlan0', role: 'sometimes' }, 'role'],
    ['a negative cap', 'setUplink', { uplinkId: 'wlan0', capBytes: -1 }, 'capBytes'],
    ['a fractional port', 'setSettings', { proxyPort: 1080.5 }, 'proxyPort'],
    ['a privileged port', 'setSettings', { proxyPort: 80 }, 'proxyPort'],
    ['an invite of another scheme', 'setRelaySettings', { relayInvite: 'http://x' }, 'relayInvite'],
    ['a bypass without on', 'setBypass', {}, 'on'],
    ['an array for an object', 'setBypass', [true], 'argument'],
    ['an argument to getSnapshot', 'getSnapshot', { all: true }, 'argument'],
  ])('refuses %s before any handler runs', async (_what, call, arg, field) => {
    const calls: Array<[string, unknown]> = [];
    const answer = await answerInvoke(recordingHandlers(calls), call, arg);
    expect(answer.type).toBe('error');
    expect(answer.type === 'error' && answer.message).toContain(field);
    expect(calls).toEqual([]);
  });

  it('answers an unknown call and a throwing handler with an error, never a rejection', async () => {
    const calls: Array<[string, unknown]> = [];
    const h = recordingHandlers(calls);
    await expect(answerInvoke(h, 'shutdown', null)).resolves.toMatchObject({ type: 'error' });
    await expect(answerInvoke(h, 42, null)).resolves.toMatchObject({ type: 'error' });
    await expect(
      answerInvoke(h, 'setUplink', { uplinkId: 'boom', role: 'never' }),
    ).resolves.toEqual({
      type: 'error',
      message: 'no such uplink',
    });
  });

  it('derives the renderer API over a transport: invokes unwrap answers, listeners follow channels', async () => {
    const calls: Array<[string, unknown]> = [];
    const handlers = recordingHandlers(calls);
    const listeners = new Map<string, (p: unknown) => void>();
    const transport: RendererTransport = {
      invoke: (channel, arg) => answerInvoke(handlers, callFromChannel(channel) ?? channel, arg),
      listen: (channel, fn) => {
        listeners.set(channel, fn);
        return () => listeners.delete(channel);
      },
    };
    const api = createApi(transport);
    await expect(api.setBypass({ on: true })).resolves.toBeNull();
    expect(calls).toEqual([['setBypass', { on: true }]]);
    await expect(api.setSettings({ proxyPort: 1 })).rejects.toThrow(/setSettings: proxyPort/);
    const seen: number[] = [];
    const stop = api.listenUpdate((u) => seen.push(u.seq));
    listeners.get('braid:update')!({ seq: 7 });
    stop();
    expect(seen).toEqual([7]);
    expect(listeners.has('braid:update')).toBe(false);
  });
});
