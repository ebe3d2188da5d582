/**
 * The window's security policy as plain data and functions, so that unit tests check
 * it under Node (Electron does not start on the CI machine). Follows Electron's
 * security checklist (electronjs.org/docs/latest/tutorial/security): context
 * isolation, sandbox, no Node integration, a strict CSP, navigation and new windows
 * denied, IPC only from our own window's frame.
 */

/** The scheme the renderer is served from (electron/app-protocol.ts), not file://. */
export const APP_SCHEME = 'braid-app';
export const APP_ORIGIN = `${APP_SCHEME}://dashboard`;
export const APP_ENTRY = `${APP_ORIGIN}/index.html`;

export const WEB_PREFERENCES = {
  contextIsolation: true,
  sandbox: true,
  nodeIntegration: false,
  nodeIntegrationInWorker: false,
  nodeIntegrationInSubFrames: false,
  webSecurity: true,
  allowRunningInsecureContent: false,
  webviewTag: false,
  experimentalFeatures: false,
  spellcheck: false,
} as const;

/** No inline script, no eval, no remote anything; the engine is reached by IPC only. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

function parse(url: string): URL | undefined {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
}

/**
 * Navigation away from the app is denied; only a change of the hash within the app
 * (the view tabs) is a navigation we allow.
 */
export function isAllowedNavigation(target: string, current: string): boolean {
  const t = parse(target);
  const c = parse(current);
  if (t === undefined || c === undefined) return false;
  return t.protocol === `${APP_SCHEME}:` && t.host === c.host && t.pathname === c.pathname;
}

/** Links the dashboard may open in the user's browser (none today; docs later). */
export function isAllowedExternal(url: string): boolean {
  const u = parse(url);
  return u !== undefined && u.protocol === 'https:' && u.hostname === 'github.com';
}

export interface IpcSenderFacts {
  /** webContents id of the sender. */
  senderId: number;
  /** URL of the frame that sent the message; null when the frame is gone. */
  frameUrl: string | null;
  /** Whether the sending frame is the main frame (not an iframe). */
  mainFrame: boolean;
}

/**
 * IPC is accepted only from our own window's main frame showing our own app (the
 * Electron checklist's "validate the sender of all IPC messages").
 */
export function isTrustedSender(facts: IpcSenderFacts, windowId: number | undefined): boolean {
  if (windowId === undefined || facts.senderId !== windowId || !facts.mainFrame) return false;
  const u = facts.frameUrl === null ? undefined : parse(facts.frameUrl);
  return u !== undefined && u.protocol === `${APP_SCHEME}:` && u.host === 'dashboard';
}

/** Whether closing the window only hides it (to the tray) or lets it close (quitting). */
export function closeHidesWindow(quitting: boolean): boolean {
  return !quitting;
}

/** Permissions the dashboard never needs (camera, notifications, …): all are refused. */
export function allowPermission(_permission: string): boolean {
  return false;
}
