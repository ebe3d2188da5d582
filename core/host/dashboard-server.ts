import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { extname, join, normalize, sep } from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  answerInvoke,
  callFromChannel,
  channelOf,
  type Handlers,
  type Update,
} from './contract.js';
import { BraidError } from '../util/errors.js';
import { createLogger, errorFields, type Logger } from '../util/log.js';

/**
 * The headless dashboard server: the same contract as Electron's preload, over HTTP and
 * a WebSocket on 127.0.0.1 only. Everything lives under a random token in the path
 * (`http://127.0.0.1:PORT/<token>/`), so relative asset URLs carry it without cookies;
 * a request or an upgrade without it is refused. The Host header must name this
 * server (against DNS rebinding) and an Origin, where sent, must be this server's own
 * (against cross-site WebSocket hijacking; browsers always send one on upgrades).
 * The same rules as Jupyter's token and Vite's `server.allowedHosts`.
 */
export interface EngineLike {
  readonly handlers: Handlers;
  on(event: 'update', listener: (u: Update) => void): unknown;
  off(event: 'update', listener: (u: Update) => void): unknown;
}

export interface DashboardServerOptions {
  engine: EngineLike;
  /** The built renderer (vite's outDir). */
  staticDir: string;
  port?: number;
  /** Given by tests only; default 32 random bytes. */
  token?: string;
  logger?: Logger;
}

export interface DashboardServer {
  readonly url: string;
  readonly port: number;
  readonly token: string;
  /** Sockets connected now. */
  readonly clients: number;
  close(): Promise<void>;
}

/** Largest message a dashboard may send (a command is a few hundred bytes). */
const MAX_MESSAGE = 64 * 1024;
/** Updates are skipped, not queued, for a client this far behind. */
const MAX_BUFFERED = 1024 * 1024;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

export async function startDashboardServer(
  options: DashboardServerOptions,
): Promise<DashboardServer> {
  const log = (options.logger ?? createLogger()).child({ component: 'dashboard' });
  const token = options.token ?? randomBytes(32).toString('base64url');
  if (!/^[\w-]{16,}$/.test(token))
    throw new BraidError('BRAID_ERR_USAGE', 'token must be at least 16 URL-safe characters');
  const tokenBytes = Buffer.from(token);
  const prefix = `/${token}/`;
  const host = '127.0.0.1';
  let port = 0;

  const allowedHosts = (): string[] => [`127.0.0.1:${port}`, `localhost:${port}`];
  const allowedOrigins = (): string[] => allowedHosts().map((h) => `http://${h}`);

  /** Why a request is refused, or undefined when it may go on. */
  const refusal = (req: IncomingMessage, requireOrigin: boolean): string | undefined => {
    if (!allowedHosts().includes(req.headers.host ?? '')) return 'bad host';
    const origin = req.headers.origin;
    if (origin === undefined ? requireOrigin : !allowedOrigins().includes(origin))
      return 'bad origin';
    const path = (req.url ?? '').split('?')[0]!;
    const given = Buffer.from(path.slice(1, 1 + token.length));
    if (
      given.length !== tokenBytes.length ||
      !timingSafeEqual(given, tokenBytes) ||
      path[token.length + 1] !== '/'
    )
      return 'bad token';
    return undefined;
  };

  const csp = (): string =>
    [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "img-src 'self' data:",
      "font-src 'self'",
      `connect-src ws://127.0.0.1:${port} ws://localhost:${port}`,
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
    ].join('; ');

  const send = (res: ServerResponse, status: number, body: string | Buffer, type: string): void => {
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Security-Policy': csp(),
      // The token is in the URL: never hand it to another site in a Referer.
      'Referrer-Policy': 'no-referrer',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Cache-Control': 'no-store',
    });
    res.end(body);
  };

  const serveFile = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'method not allowed\n', 'text/plain');
      return;
    }
    const rel =
      decodeURIComponent((req.url ?? '').split('?')[0]!.slice(prefix.length)) || 'index.html';
    const file = normalize(join(options.staticDir, rel));
    if (!file.startsWith(normalize(options.staticDir) + sep)) {
      send(res, 404, 'not found\n', 'text/plain');
      return;
    }
    const info = await stat(file).catch(() => undefined);
    if (info === undefined || !info.isFile()) {
      const missing = rel === 'index.html';
      send(
        res,
        missing ? 503 : 404,
        missing ? 'the dashboard is not built: run npm run build:renderer\n' : 'not found\n',
        'text/plain',
      );
      return;
    }
    send(res, 200, await readFile(file), TYPES[extname(file)] ?? 'application/octet-stream');
  };

  const server = createServer((req, res) => {
    const why = refusal(req, false);
    if (why !== undefined) {
      log.info('request refused', { why });
      send(res, 403, 'forbidden\n', 'text/plain');
      return;
    }
    serveFile(req, res).catch((err: unknown) => {
      log.warn('serving a file failed', errorFields(err));
      if (!res.headersSent) send(res, 500, 'internal error\n', 'text/plain');
      else res.destroy();
    });
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const why =
      refusal(req, true) ??
      ((req.url ?? '').split('?')[0] === `${prefix}ws` ? undefined : 'bad path');
    if (why !== undefined) {
      log.info('upgrade refused', { why });
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveSocket(ws));
  });

  const serveSocket = (ws: WebSocket): void => {
    const channel = channelOf('update');
    const onUpdate = (u: Update): void => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > MAX_BUFFERED) return;
      ws.send(JSON.stringify({ channel, payload: u }));
    };
    options.engine.on('update', onUpdate);
    ws.on('close', () => options.engine.off('update', onUpdate));
    ws.on('error', (err) => log.info('dashboard socket error', errorFields(err)));
    ws.on('message', (data: Buffer, isBinary) => {
      let msg: unknown;
      try {
        msg = isBinary ? undefined : JSON.parse(data.toString('utf8'));
      } catch (err) {
        log.info('dashboard sent bad JSON', errorFields(err));
      }
      const m = (typeof msg === 'object' && msg !== null ? msg : {}) as {
        id?: unknown;
        channel?: unknown;
        arg?: unknown;
      };
      if (typeof m.id !== 'number' || typeof m.channel !== 'string') {
        ws.close(1008, 'expected {id, channel, arg}');
        return;
      }
      const id = m.id;
      const call = callFromChannel(m.channel);
      void answerInvoke(options.engine.handlers, call ?? m.channel, m.arg).then((answer) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id, answer }));
      });
    });
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string')
    throw new BraidError('BRAID_ERR_INTERNAL', 'dashboard server has no port');
  port = address.port;
  const url = `http://127.0.0.1:${port}${prefix}`;
  log.info('dashboard listening', { port });
  return {
    url,
    port,
    token,
    get clients() {
      return wss.clients.size;
    },
    close: async () => {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
