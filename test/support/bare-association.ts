import { deriveAssociationSecrets } from '../../core/handshake/keys.js';
import { Association } from '../../core/session/association.js';
import { verifyConfig } from '../../core/session/config.js';
import type { Subflow } from '../../core/transport/subflow.js';
import type { ManualClock } from '../../core/util/clock.js';
import { createLogger } from '../../core/util/log.js';

/**
 * A client association with fixed keys and no handshake, on `clock`: for tests of what
 * the association decides and builds, whose paths are added with addPath.
 */
export function bareAssociation(clock: ManualClock): Association {
  return new Association({
    role: 'client',
    secrets: deriveAssociationSecrets(Buffer.alloc(32, 3), Buffer.alloc(8, 4)),
    config: verifyConfig(),
    logger: createLogger({ level: 'silent' }),
    peer: 'test',
    clock,
  });
}

/**
 * A UDP subflow of `maxPacketSize` that goes nowhere; the sealed packets given to it
 * are kept in `sent` when one is passed (the packets are what such a test checks).
 */
export function sinkSubflow(localAddress: string, sent?: Buffer[], maxPacketSize = 1452): Subflow {
  const keep = (p: Buffer): boolean => {
    sent?.push(p);
    return true;
  };
  return {
    kind: 'udp',
    localAddress,
    localPort: 1,
    remoteAddress: '10.9.9.9',
    remotePort: 2,
    maxPacketSize,
    send: (p: Uint8Array) => keep(Buffer.from(p)),
    sendParts: (parts: readonly Buffer[]) => keep(Buffer.concat(parts)),
    cork: () => undefined,
    uncork: () => undefined,
    queuedBytes: 0,
    closed: false,
    onPacket: () => undefined,
    onDrain: () => undefined,
    onClose: () => undefined,
    close: () => undefined,
  };
}
