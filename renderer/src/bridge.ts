import { createApi, type BraidApi } from '../../core/host/contract';
import { useBraid } from './store';
import { socketUrlFor, wsTransport } from './ws-transport';

declare global {
  interface Window {
    /** Set by Electron's preload (electron/preload.ts); absent in a plain browser. */
    braid?: BraidApi;
  }
}

/**
 * The engine's API for this page: Electron's preload when present, else the headless
 * server's WebSocket. The rest of the renderer cannot tell which (DESIGN §2).
 */
export const api: BraidApi =
  window.braid ??
  createApi(
    wsTransport(socketUrlFor(window.location), (c) => useBraid.getState().setConnection(c)),
  );

if (window.braid !== undefined) useBraid.getState().setConnection('open');

/** Loads the snapshot, then follows updates; loads again after a reconnect. */
export function startSync(): () => void {
  const store = useBraid.getState();
  const stop = api.listenUpdate((u) => store.applyUpdate(u));
  let lastConnection = useBraid.getState().connection;
  const load = (): void => {
    api.getSnapshot(null).then(
      (s) => store.applySnapshot(s),
      (err: unknown) => console.warn('snapshot failed', err),
    );
  };
  load();
  const unsub = useBraid.subscribe((s) => {
    if (s.connection === 'open' && lastConnection !== 'open' && s.loaded) load();
    lastConnection = s.connection;
  });
  return () => {
    stop();
    unsub();
  };
}
