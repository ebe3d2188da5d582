import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  app,
  BrowserWindow,
  ipcMain,
  Menu,
  nativeImage,
  protocol,
  session,
  shell,
  Tray,
  type MenuItemConstructorOptions,
} from 'electron';
import { BraidHost } from '../core/host/host.js';
import { channelOf, INVOKE_NAMES, type Update } from '../core/host/contract.js';
import { createLogger, errorFields } from '../core/util/log.js';
import { resolveAppFile } from './app-protocol.js';
import { answerIpc } from './ipc.js';
import { trayIconFile, trayMenu, trayStateOf, type TrayIconState } from './tray-state.js';
import {
  allowPermission,
  APP_ENTRY,
  APP_SCHEME,
  closeHidesWindow,
  CONTENT_SECURITY_POLICY,
  isAllowedExternal,
  isAllowedNavigation,
  WEB_PREFERENCES,
} from './window-policy.js';

// Thin by design: every decision lives in a plain module that unit tests cover under
// Node (tray-state, window-policy, app-protocol, ipc); this file wires them to Electron.
// Bundled by electron/build.ts into out/app/electron/, beside out/renderer/.
const here = fileURLToPath(new URL('.', import.meta.url));
const RENDERER_DIR = join(here, '../../renderer');
const ASSETS_DIR = join(here, '../../../assets');
const log = createLogger().child({ component: 'electron' });

protocol.registerSchemesAsPrivileged([
  { scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } },
]);

let window: BrowserWindow | undefined;
let tray: Tray | undefined;
let trayState: TrayIconState | undefined;
let quitting = false;
let lastUpdate: Update | undefined;

function showWindow(): void {
  if (window === undefined) window = createWindow();
  window.show();
  window.focus();
}

function createWindow(): BrowserWindow {
  const w = new BrowserWindow({
    width: 1200,
    height: 820,
    show: false,
    title: 'Braid',
    webPreferences: { ...WEB_PREFERENCES, preload: join(here, 'preload.cjs') },
  });
  // Checklist item 13: navigation, and redirects of an allowed one, stay in the app.
  const stayInApp = (event: { preventDefault(): void }, url: string): void => {
    if (!isAllowedNavigation(url, w.webContents.getURL())) event.preventDefault();
  };
  w.webContents.on('will-navigate', stayInApp);
  w.webContents.on('will-redirect', stayInApp);
  // Item 12: no <webview> can be attached, whatever the page asks.
  w.webContents.on('will-attach-webview', (event) => event.preventDefault());
  w.webContents.setWindowOpenHandler(({ url }) => {
    if (isAllowedExternal(url)) void shell.openExternal(url);
    return { action: 'deny' };
  });
  // DESIGN §1: closing the window hides it to the tray; Quit in the menu quits.
  w.on('close', (event) => {
    if (closeHidesWindow(quitting)) {
      event.preventDefault();
      w.hide();
    }
  });
  w.on('closed', () => (window = undefined));
  void w.loadURL(APP_ENTRY);
  w.once('ready-to-show', () => w.show());
  return w;
}

function updateTray(update: Update | undefined): void {
  if (tray === undefined) return;
  const state = trayStateOf(update);
  if (state !== trayState) {
    trayState = state;
    tray.setImage(nativeImage.createFromPath(join(ASSETS_DIR, trayIconFile(state))));
  }
  const items: MenuItemConstructorOptions[] = trayMenu(update).map((item) => {
    switch (item.kind) {
      case 'status':
        return { label: item.label, enabled: false };
      case 'separator':
        return { type: 'separator' };
      case 'toggle':
        return {
          label: item.label,
          type: 'checkbox',
          checked: item.checked,
          click: (menuItem) => void host?.handlers.setBypass({ on: menuItem.checked }),
        };
      case 'action':
        return {
          label: item.label,
          click: item.id === 'open' ? showWindow : () => app.quit(),
        };
    }
  });
  tray.setContextMenu(Menu.buildFromTemplate(items));
  tray.setToolTip(items[0]?.label ?? 'Braid');
}

let host: BraidHost | undefined;

async function start(): Promise<void> {
  protocol.handle(APP_SCHEME, async (request) => {
    const found = resolveAppFile(request.url, RENDERER_DIR);
    if (found === undefined) return new Response('not found', { status: 404 });
    const body = await readFile(found.file).catch(() => undefined);
    if (body === undefined) return new Response('not found', { status: 404 });
    return new Response(body, {
      headers: { 'Content-Type': found.type, 'Content-Security-Policy': CONTENT_SECURITY_POLICY },
    });
  });
  session.defaultSession.setPermissionRequestHandler((_wc, permission, callback) =>
    callback(allowPermission(permission)),
  );
  session.defaultSession.setPermissionCheckHandler((_wc, permission) =>
    allowPermission(permission),
  );

  host = await BraidHost.start({
    mode: process.env.BRAID_DEMO === '1' ? 'demo' : 'live',
    settingsFile: join(app.getPath('userData'), 'settings.json'),
    logger: log,
    launchAtLogin: (on) => app.setLoginItemSettings({ openAtLogin: on }),
  });
  const engine = host;
  for (const name of INVOKE_NAMES) {
    ipcMain.handle(channelOf(name), (event, arg: unknown) =>
      answerIpc(
        engine.handlers,
        channelOf(name),
        arg,
        {
          senderId: event.sender.id,
          frameUrl: event.senderFrame?.url ?? null,
          mainFrame: event.senderFrame !== null && event.senderFrame === event.sender.mainFrame,
        },
        window?.webContents.id,
      ),
    );
  }
  engine.on('update', (u) => {
    lastUpdate = u;
    if (window !== undefined && !window.isDestroyed())
      window.webContents.send(channelOf('update'), u);
  });
  // The tray menu is rebuilt at most once a second; the window gets every update.
  setInterval(() => updateTray(lastUpdate), 1000);

  tray = new Tray(nativeImage.createFromPath(join(ASSETS_DIR, trayIconFile('offline'))));
  tray.on('click', showWindow);
  updateTray(undefined);
  showWindow();
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', showWindow);
  app.on('before-quit', () => {
    quitting = true;
  });
  app.on('will-quit', (event) => {
    if (host === undefined) return;
    event.preventDefault();
    const h = host;
    host = undefined;
    void h.stop().finally(() => app.quit());
  });
  // A tray app keeps running with no window open.
  app.on('window-all-closed', () => undefined);
  app
    .whenReady()
    .then(start)
    .catch((err: unknown) => {
      log.error('start failed', errorFields(err));
      app.exit(1);
    });
}
