import net from 'node:net';
import { BraidError } from '../util/errors.js';
import { errorFields, type Logger } from '../util/log.js';
import type { Subflow } from './subflow.js';
import { wrapTcpSocket, type TcpSubflowOptions } from './tcp-subflow.js';
import { checkAddress, transportLogger } from './udp-subflow.js';

export interface TcpListenerOptions extends TcpSubflowOptions {
  logger?: Logger;
}

/**
 * Accepts TCP subflows on one address; each accepted socket is wrapped into a record
 * subflow (tcp-subflow.ts) and handed to `onSubflow`. Its localAddress is the address
 * the connection actually arrived on, even when the listener is bound to a wildcard.
 */
export class TcpListener {
  /** Set by the owner; the default refuses the connection. */
  onSubflow: (subflow: Subflow) => void = (subflow) => subflow.close();
  /** Failed accepts (EMFILE and the like); the listener keeps listening. */
  acceptErrors = 0;
  private readonly open = new Set<Subflow>();
  private closing: Promise<void> | undefined;
  /** Set while closing: resolves the close once the server and every socket are gone. */
  private settle: (() => void) | undefined;

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
    readonly port: number,
    private readonly options: TcpSubflowOptions,
    private readonly log: Logger,
  ) {
    server.on('connection', (socket: net.Socket) => this.accept(socket));
    server.on('error', (err: NodeJS.ErrnoException) => {
      this.acceptErrors++;
      this.log.warn('TCP accept failed', { address, port, ...errorFields(err) });
    });
  }

  /**
   * Listens on `address`:`port` (0: the kernel picks). Rejects with BRAID_ERR_USAGE for
   * a malformed address and BRAID_ERR_TRANSPORT when it cannot listen.
   */
  static async listen(
    address: string,
    port: number,
    options: TcpListenerOptions = {},
  ): Promise<TcpListener> {
    const bad = checkAddress(address, port, 'listener', true);
    if (bad !== undefined) throw bad;
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void =>
        reject(
          new BraidError('BRAID_ERR_TRANSPORT', `could not listen: ${err.code ?? err.message}`, {
            path: `tcp ${address}:${port}`,
            cause: err,
          }),
        );
      server.once('error', onError);
      server.listen(port, address, () => {
        server.off('error', onError);
        resolve();
      });
    });
    const bound = server.address() as net.AddressInfo;
    const { logger, ...subflowOptions } = options;
    return new TcpListener(
      server,
      bound.address,
      bound.port,
      subflowOptions,
      transportLogger(logger),
    );
  }

  /** Accepted subflows whose sockets are still open. */
  get subflowCount(): number {
    return this.open.size;
  }

  private accept(socket: net.Socket): void {
    const subflow = wrapTcpSocket(socket, this.options);
    this.open.add(subflow);
    socket.once('close', () => {
      this.open.delete(subflow);
      this.settle?.();
    });
    if (this.closing !== undefined) {
      subflow.close();
      return;
    }
    this.onSubflow(subflow);
  }

  /**
   * Stops listening and closes the accepted subflows still open (their owners get
   * onClose once, without error); resolves when every socket is gone. Owners close
   * their paths before the listener (core/api/listener.ts), so this only reaps
   * connections that never joined anything and would otherwise keep the close pending.
   */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      let listening = true;
      this.settle = () => {
        if (!listening && this.open.size === 0) resolve();
      };
      this.server.close(() => {
        listening = false;
        this.settle?.();
      });
      for (const subflow of [...this.open]) subflow.close();
    });
    return this.closing;
  }
}
