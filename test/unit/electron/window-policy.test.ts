import { describe, expect, it } from 'vitest';
import {
  allowPermission,
  APP_ENTRY,
  closeHidesWindow,
  CONTENT_SECURITY_POLICY,
  isAllowedExternal,
  isAllowedNavigation,
  isTrustedSender,
  WEB_PREFERENCES,
} from '../../../electron/window-policy.js';
import { resolveAppFile } from '../../../electron/app-protocol.js';
import { answerIpc } from '../../../electron/ipc.js';
import type { Handlers } from '../../../core/host/contract.js';

describe('window security policy', () => {
  it('isolates the renderer: context isolation, sandbox, no Node', () => {
    expect(WEB_PREFERENCES).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      webviewTag: false,
    });
  });

  it('has a CSP without inline script, eval or network access', () => {
    const directives: Record<string, string[]> = {};
    for (const d of CONTENT_SECURITY_POLICY.split(';')) {
      const [name, ...values] = d.trim().split(/\s+/);
      directives[name!] = values;
    }
    expect(directives['default-src']).toEqual(["'none'"]);
    expect(directives['script-src']).toEqual(["'self'"]);
    expect(directives['connect-src']).toEqual(["'none'"]);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-(inline|eval)/);
  });

  it('allows only in-app hash changes as navigation', () => {
    expect(isAllowedNavigation(`${APP_ENTRY}#apps`, APP_ENTRY)).toBe(true);
    expect(isAllowedNavigation('https://example.com/', APP_ENTRY)).toBe(false);
    expect(isAllowedNavigation('file:///etc/passwd', APP_ENTRY)).toBe(false);
    expect(isAllowedNavigation('braid-app://other/index.html', APP_ENTRY)).toBe(false);
    expect(isAllowedNavigation('braid-app://dashboard/other.html', APP_ENTRY)).toBe(false);
    expect(isAllowedNavigation('not a url', APP_ENTRY)).toBe(false);
    expect(isAllowedExternal('http://github.com/')).toBe(false);
    expect(isAllowedExternal('javascript:alert(1)')).toBe(false);
  });

  it('accepts IPC only from its own window’s main frame showing the app', () => {
    const ok = { senderId: 7, frameUrl: `${APP_ENTRY}#overview`, mainFrame: true };
    expect(isTrustedSender(ok, 7)).toBe(true);
    expect(isTrustedSender(ok, 8)).toBe(false);
    expect(isTrustedSender(ok, undefined)).toBe(false);
    expect(isTrustedSender({ ...ok, mainFrame: false }, 7)).toBe(false);
    expect(isTrustedSender({ ...ok, frameUrl: 'https://evil.example/' }, 7)).toBe(false);
    expect(isTrustedSender({ ...ok, frameUrl: null }, 7)).toBe(false);
  });

  it('refuses untrusted IPC before the contract, and validates trusted IPC against it', async () => {
    const seen: unknown[] = [];
    const handlers = { setBypass: (a: unknown) => (seen.push(a), null) } as unknown as Handlers;
    const sender = { senderId: 1, frameUrl: APP_ENTRY, mainFrame: true };
    await expect(
      answerIpc(handlers, 'braid:setBypass', { on: true }, { ...sender, senderId: 2 }, 1),
    ).resolves.toMatchObject({
      type: 'error',
      message: expect.stringMatching(/refused/) as unknown,
    });
    await expect(
      answerIpc(handlers, 'braid:setBypass', { on: 'yes' }, sender, 1),
    ).resolves.toMatchObject({ type: 'error' });
    expect(seen).toEqual([]);
    await expect(answerIpc(handlers, 'braid:setBypass', { on: true }, sender, 1)).resolves.toEqual({
      type: 'success',
      value: null,
    });
    expect(seen).toEqual([{ on: true }]);
  });

  it('hides the window on close unless quitting, and grants no permission', () => {
    expect(closeHidesWindow(false)).toBe(true);
    expect(closeHidesWindow(true)).toBe(false);
    for (const p of ['media', 'notifications', 'geolocation', 'clipboard-read'])
      expect(allowPermission(p)).toBe(false);
  });

  it('serves only files inside the renderer build over its own scheme', () => {
    const root = '/opt/braid/out/renderer';
    expect(resolveAppFile('braid-app://dashboard/', root)).toEqual({
      file: `${root}/index.html`,
      type: 'text/html; charset=utf-8',
    });
    expect(resolveAppFile('braid-app://dashboard/assets/index-1.js', root)?.file).toBe(
      `${root}/assets/index-1.js`,
    );
    for (const bad of [
      'braid-app://dashboard/..%2f..%2fetc%2fpasswd',
      'braid-app://elsewhere/index.html',
      'file:///opt/braid/out/renderer/index.html',
      'braid-app://dashboard/%E0%A4%A',
    ])
      expect(resolveAppFile(bad, root), bad).toBeUndefined();
    // Encoded dots are folded by URL parsing; whatever remains stays inside the root.
    expect(resolveAppFile('braid-app://dashboard/%2e%2e/%2e%2e/secret', root)?.file).toBe(
      `${root}/secret`,
    );
  });
});
