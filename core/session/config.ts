import { BraidError } from '../util/errors.js';

/**
 * Association and session tuning, one schema with its defaults beside it (STYLE §8).
 * `verifyConfig` reports a bad value field by field.
 */
export const defaultConfig = {
  /** Receive window per session, bytes; also bounds the reorder buffer. */
  sessionWindow: 16 * 1024 * 1024,
  /**
   * Received bytes one association may hold across all its sessions (reorder buffers,
   * data the application has not read, messages that arrived before their OPEN).
   * Each session may always receive 256 KiB (session.ts INITIAL_PEER_WINDOW); windows
   * beyond that are granted from at most half of this (the other half stays for the
   * 256 KiB of sessions still to come), so that with up to 128 sessions flow control
   * alone keeps the total here. A peer that fills more sessions than that (it opened
   * many and the application reads none) gets sessions reset with BRAID_ERR_FLOW_CONTROL
   * (those never read first, largest first), so the total never exceeds it by more than
   * one packet (Association.receiveBufferChanged, SECURITY.md).
   */
  associationBuffer: 64 * 1024 * 1024,
  /**
   * Unacknowledged bytes per session before the application's writes wait. 4 MiB, as
   * Linux's largest TCP send buffer (tcp_wmem), covers the windows of every path at a
   * laptop's rates (50 Mbit/s × 100 ms is 625 KB). At 16 MiB a bulk sender (the lab's
   * relay) spent its first 400 ms filling the buffer (about 100 ms of CPU for the
   * payload and the GC it caused) just as slow start needed the event loop, for data
   * that waited 2.7 s at 47 Mbit/s before it was sent.
   */
  sendBufferLimit: 4 * 1024 * 1024,
  /**
   * Unacknowledged bytes one association may hold across all its sessions before the
   * applications' writes wait (each session still stops at sendBufferLimit). Without
   * it a relay serving a client with many sessions from fast servers would hold
   * sendBufferLimit per session: 4 GiB for a thousand. A write that finds the total
   * over this waits until acknowledgements bring it under (Association.sendRoom), so
   * the total exceeds it by at most one write per session.
   */
  associationSendBuffer: 64 * 1024 * 1024,
  /** How long a client waits for JOIN_ACK on a UDP path before it falls back to TCP. */
  joinTimeoutMs: 1000,
  /** Interval between JOIN retransmissions on UDP. */
  joinRetryMs: 200,
  /** Time for a peer to answer HELLO before it is taken for a legacy host. */
  helloTimeoutMs: 3000,
  /**
   * Largest UDP payload on a non-loopback path: a 1500-byte MTU minus IPv6's 40-byte and
   * UDP's 8-byte headers, so it fits either family (IPv4 alone would allow 1472). There
   * is no path MTU discovery: a path under 1500 needs this lowered.
   */
  udpPacketSize: 1452,
  /**
   * Largest UDP packet on loopback paths. Loopback's MTU is 64 KiB, but a socket
   * receive buffer at the unprivileged default (208 KiB) holds only a few huge
   * datagrams, so a middle size loses less under bursts.
   */
  loopbackUdpPacketSize: 16384,
  /** Largest record on a TCP path. */
  tcpPacketSize: 65536,
  /**
   * Congestion controller of UDP paths. 'auto' (the default) gives each path its own:
   * CUBIC until the path shows that its losses are random — three congestion events
   * in a row with the smallest RTT of the round trip before within 1.3× the path's
   * minimum and the newest RTT (the packet that revealed the loss) within rttvar of
   * that (no queue had filled), on a path losing ≥ 0.3% of its packets (core/paths/path-recovery.ts AUTO_*) — and BBR
   * (core/paths/bbr.ts) from then on. The CUBIC path is coupled by LIA
   * (coupledCongestion) from its first loss with the RTT inflated (a queue overflowed,
   * slow start's at the latest on a queued link): coupled earlier, LIA moves traffic
   * off a randomly lossy path until it carries too little to be judged.
   * Why per path and not 'bbr' for all:
   * - A lossy radio uplink needs BBR: on the simulated 10 Mbit/s, 60 ms link with 1%
   *   random loss BBR carries 98% of the rate where CUBIC gets 25–27%
   *   (test/unit/paths/bbr-link.test.ts, which also checks that 'auto' switches
   *   there), and in the lab's scenario b the LTE path carried 7.4 Mbit/s with BBR
   *   against 1.0 with CUBIC.
   * - Fairness: a bottleneck that two paths share fills its queue before it drops, so
   *   the RTT at each loss is inflated and 'auto' keeps those paths on coupled CUBIC —
   *   DESIGN §3's one-TCP-share (lab scenario g). BBR paths are not coupled (LIA shapes
   *   only a loss-based increase; coupled-congestion.ts skips BBR members), so a path
   *   moved to BBR before its pair was judged goes back to coupled CUBIC once its queue
   *   is shown to be shared (PathRecovery.switchBackToCubic), for good.
   * - With 'bbr' for every path two integration tests fail, and with 'auto' (no random
   *   loss on loopback) they pass: in striping.test.ts two UDP paths beside a TCP path
   *   on loopback carried 5–8% of the bytes each (it needs 10%) — the TCP path's 4 MB
   *   in flight inflates the RTT every path sees, and BBR, whose window is 2 BDP of the
   *   min RTT, yields to it where CUBIC grows until loss — and objectives.test.ts's
   *   feedback test no longer saw the reported path's share halve: BBR's pacer holds
   *   the other path back more often, and the throughput scheduler then sent on
   *   whichever path could send now (a reported path is held to its share since
   *   7d8e690; throughput-scheduler.ts).
   * Lab, 17:50–18:05 on a loaded host (load 5–7 on 2 cores; `npm run bench -- lab a-wifi-cable
   * b-wifi-lte c-three-spread --no-fidelity`, and b/d/g just before): a stays CUBIC on both
   * paths, 42.9 Mbit/s (MPTCP 47.0); in b the LTE path moved to BBR and Braid made 33.6
   * (84% of 40; MPTCP 20.5, Wi-Fi TCP 28.8; 29.7 with 'cubic' at idle); c 36.6 (81% of
   * 45, tether stays CUBIC; MPTCP 39.9); in g both paths
   * stayed coupled CUBIC and took 1.04× the competing TCP flow (uncoupled 1.59×).
   * Known limit: a shallow-buffered bottleneck (buffer well under a BDP) also drops
   * with the RTT near its minimum, so 'auto' picks BBR there too, which is the better
   * controller for such a buffer but is not coupled. 'cubic', 'newreno' and 'bbr' fix
   * the controller for every path.
   */
  congestion: 'auto' as 'auto' | 'cubic' | 'newreno' | 'bbr',
  /**
   * Couple the UDP paths' congestion control (LIA, core/paths/coupled-congestion.ts)
   * so that the association takes no more than one TCP flow's share at a shared
   * bottleneck (DESIGN §3 fairness). false opts out.
   */
  coupledCongestion: true as boolean,
  /**
   * Link only the UDP paths found to share a bottleneck (core/paths/shared-bottleneck.ts:
   * one path's window cut drains the other's queue too), so that paths with disjoint
   * bottlenecks each keep CUBIC's own response. false links every coupled path, as
   * RFC 6356 links an MPTCP connection's subflows. Has no effect without coupledCongestion.
   */
  detectSharedBottleneck: true as boolean,
  /** Probe a path that carried nothing for this long (keeps estimates fresh, DESIGN §3). */
  keepaliveMs: 5000,
  /** An association with no packet from the peer for this long is closed. */
  idleTimeoutMs: 30000,
} as const;

export type Config = {
  -readonly [K in keyof typeof defaultConfig]: (typeof defaultConfig)[K] extends number
    ? number
    : (typeof defaultConfig)[K];
};

export function verifyConfig(partial: Partial<Config> = {}): Config {
  const config = { ...defaultConfig, ...partial } as Config;
  for (const [key, value] of Object.entries(config)) {
    if (key === 'coupledCongestion' || key === 'detectSharedBottleneck') {
      if (typeof value !== 'boolean') {
        throw new BraidError('BRAID_ERR_CONFIG', `config.${key} must be true or false`, { value });
      }
      continue;
    }
    if (key === 'congestion') {
      if (value !== 'auto' && value !== 'cubic' && value !== 'newreno' && value !== 'bbr') {
        throw new BraidError(
          'BRAID_ERR_CONFIG',
          `config.${key} must be "auto", "cubic", "newreno" or "bbr"`,
          {
            value,
          },
        );
      }
      continue;
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new BraidError('BRAID_ERR_CONFIG', `config.${key} must be a positive number`, {
        value,
      });
    }
  }
  if (config.sessionWindow < 256 * 1024) {
    // session.ts INITIAL_PEER_WINDOW: a peer sends this much before our MAX_DATA.
    throw new BraidError('BRAID_ERR_CONFIG', 'config.sessionWindow must be at least 262144', {
      value: config.sessionWindow,
    });
  }
  if (config.associationBuffer < config.sessionWindow) {
    throw new BraidError(
      'BRAID_ERR_CONFIG',
      'config.associationBuffer must be at least config.sessionWindow',
      { value: config.associationBuffer },
    );
  }
  if (config.udpPacketSize < 1200 || config.udpPacketSize > 65000) {
    throw new BraidError('BRAID_ERR_CONFIG', 'config.udpPacketSize must lie in 1200..65000', {
      value: config.udpPacketSize,
    });
  }
  if (config.loopbackUdpPacketSize < 1200 || config.loopbackUdpPacketSize > 65000) {
    throw new BraidError(
      'BRAID_ERR_CONFIG',
      'config.loopbackUdpPacketSize must lie in 1200..65000',
      {
        value: config.loopbackUdpPacketSize,
      },
    );
  }
  if (config.tcpPacketSize < 1200 || config.tcpPacketSize > 256 * 1024) {
    throw new BraidError('BRAID_ERR_CONFIG', 'config.tcpPacketSize must lie in 1200..262144', {
      value: config.tcpPacketSize,
    });
  }
  return config;
}
