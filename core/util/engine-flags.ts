/**
 * Node (V8) flags for a process that runs the striping engine. V8 sizes its heap when
 * the isolate is created, so these must be on the command line (`node FLAGS …`, or
 * NODE_OPTIONS); `v8.setFlagsFromString` at run time does not resize the young
 * generation. Every launcher passes them: package.json's scripts, bin/braid.mjs's
 * shebang, the relay's systemd unit (assets/braid-relay.service), the relay that
 * `braid demo` spawns (it inherits execArgv) and the lab's Braid processes
 * (test/lab/baselines.ts). test/unit/util/engine-flags.test.ts keeps the launchers and
 * this list in step. The Electron app's main process is not covered: Electron takes V8
 * flags for its main process only on its own command line (`--js-flags`), which a
 * tray app started by the desktop does not get; running the engine in a utilityProcess
 * started with these flags is the way there (to do).
 *
 * `--max-semi-space-size=4` (MB; Node 20's V8 lets a semi-space grow to 16 MB). The
 * engine allocates per packet (a cipher context, the sealed buffer, frames), nearly all
 * of it dead within a flush, but what is in flight survives: the larger the young
 * generation, the more a scavenge copies, and a scavenge stops the event loop. On
 * a 50 Mbit/s download (lab scenario a, 10 s) the relay's scavenges took p50 4.5 ms,
 * p90 8.8 ms, max 19 ms at the default (38 GCs, 15 over 5 ms) and p50 1.8 ms, p90 5.5 ms
 * at 4 MB (76 GCs, 11 over 5 ms). A pause longer than the bottleneck's standing queue
 * leaves the uplink idle; Braid's goodput there went from 45.4 to 46.5 Mbit/s (mean
 * of 10 interleaved pairs, the flag better in 9). 64 MB made it worse (fewer, longer
 * pauses); 2 MB was no better than 4.
 */
export const ENGINE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
