import { BraidClient } from '../../../core/api/client.js';
import { BraidError } from '../../../core/util/errors.js';
import type { Logger } from '../../../core/util/log.js';
import { openTestListener } from '../../support/listener-fixture.js';
import { pump, receive } from './bulk.js';

/** Bytes of the warm-up download: a few seconds of the lab's rates. */
export const WARM_UP_BYTES = 60_000_000;

/**
 * Runs Braid's send and receive paths in this process before it is measured: a
 * download of `bytes` over two loopback paths between a listener and a client of this
 * same process, with the lab's packet size, then closes both. Why: the engine is a
 * long-lived daemon (the tray app on one side, `braid relay` on the other), so a
 * user's engine runs optimised code, where a fresh process spends its first second in
 * V8's interpreter and baseline tiers. The kernel TCP and MPTCP the lab measures
 * Braid against have no such start. Nothing of the warm-up reaches the measured run:
 * its listener, keys, path metrics and scoreboard are its own and are dropped.
 */
export async function warmUp(bytes: number, logger: Logger): Promise<void> {
  const config = { loopbackUdpPacketSize: 1452 };
  const { listener, invite, close } = await openTestListener(config, logger);
  try {
    listener.on('stream', (stream) => {
      stream.on('error', (err) => logger.info('warm-up stream ended', { error: String(err) }));
      stream.resume();
      pump(stream, bytes);
    });
    const connected = await BraidClient.connect({
      invite,
      via: ['127.0.0.1', '127.0.0.2'],
      logger,
      config,
    });
    if (connected.kind !== 'braid')
      throw new BraidError('BRAID_ERR_HANDSHAKE', 'warm-up listener answered as legacy');
    const client = connected.client;
    try {
      const stream = client.openStream({ target: 'warm-up' });
      stream.end();
      await receive(stream, performance.now(), undefined);
    } finally {
      client.close();
    }
  } finally {
    await close();
  }
}
