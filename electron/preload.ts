import { contextBridge, ipcRenderer, type IpcRendererEvent } from 'electron';
import { createApi } from '../core/host/contract.js';

// The whole preload (Mullvad's is a few lines too): the contract's renderer side over
// ipcRenderer, exposed as window.braid. Nothing else of Electron reaches the page.
contextBridge.exposeInMainWorld(
  'braid',
  createApi({
    invoke: (channel, arg) => ipcRenderer.invoke(channel, arg),
    listen: (channel, fn) => {
      const listener = (_event: IpcRendererEvent, payload: unknown): void => fn(payload);
      ipcRenderer.on(channel, listener);
      return () => {
        ipcRenderer.off(channel, listener);
      };
    },
  }),
);
