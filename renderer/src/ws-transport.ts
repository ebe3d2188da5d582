import type { RendererTransport } from '../../core/host/contract';

export type ConnectionState = 'connecting' | 'open' | 'closed';

interface Pending {
  resolve: (answer: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * The headless server's side of `RendererTransport`: one WebSocket at `<page>/ws`
 * (the page's own token-prefixed path), invokes matched to answers by id, pushes by
 * channel. Reconnects with backoff; calls in flight when it drops are rejected.
 */
export function wsTransport(
  url: string,
  onState: (state: ConnectionState) => void,
): RendererTransport {
  const listeners = new Map<string, Set<(payload: unknown) => void>>();
  const pending = new Map<number, Pending>();
  let nextId = 1;
  let socket: WebSocket | undefined;
  let opened: Promise<WebSocket> = connect();
  let backoff = 250;

  function connect(): Promise<WebSocket> {
    onState('connecting');
    return new Promise((resolve) => {
      const ws = new WebSocket(url);
      socket = ws;
      ws.onopen = () => {
        backoff = 250;
        onState('open');
        resolve(ws);
      };
      ws.onmessage = (e: MessageEvent<string>) => {
        const msg = JSON.parse(e.data) as {
          id?: number;
          answer?: unknown;
          channel?: string;
          payload?: unknown;
        };
        if (typeof msg.id === 'number') {
          pending.get(msg.id)?.resolve(msg.answer);
          pending.delete(msg.id);
        } else if (typeof msg.channel === 'string') {
          for (const fn of listeners.get(msg.channel) ?? []) fn(msg.payload);
        }
      };
      ws.onclose = () => {
        onState('closed');
        for (const p of pending.values()) p.reject(new Error('connection to the engine lost'));
        pending.clear();
        setTimeout(() => {
          opened = connect();
        }, backoff);
        backoff = Math.min(backoff * 2, 5000);
      };
    });
  }

  return {
    async invoke(channel, arg) {
      const ws = socket?.readyState === WebSocket.OPEN ? socket : await opened;
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        ws.send(JSON.stringify({ id, channel, arg }));
      });
    },
    listen(channel, fn) {
      let set = listeners.get(channel);
      if (set === undefined) listeners.set(channel, (set = new Set()));
      set.add(fn);
      return () => set.delete(fn);
    },
  };
}

/** The page's WebSocket URL: same host and token path, `ws` appended. */
export function socketUrlFor(location: Location): string {
  const path = location.pathname.endsWith('/')
    ? location.pathname
    : location.pathname.replace(/[^/]*$/, '');
  return `ws://${location.host}${path}ws`;
}
