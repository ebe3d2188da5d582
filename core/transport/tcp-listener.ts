import net from 'node:net';
import { BraidError } from '../util/errors.js';
import type { Subflow } from './subflow.js';
import { wrapTcpSocket } from './tcp-subflow.js';

/** Accepts TCP subflows; each accepted socket is wrapped into a record subflow. */
export class TcpListener {
  onSubflow: (subflow: Subflow) => void = (subflow) => subflow.close();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
  ) {
    server.on('connection', (socket) => this.onSubflow(wrapTcpSocket(socket)));
  }

  static async listen(address: string, port: number): Promise<TcpListener> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err) =>
        reject(
          new BraidError('BRAID_ERR_TRANSPORT', 'could not listen for TCP subflows', {
            path: `${address}:${port}`,
            cause: err,
          }),
        ),
      );
      server.listen(port, address, () => resolve());
    });
    return new TcpListener(server, (server.address() as net.AddressInfo).port);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
