export type { Uplink, UplinkAddress, UplinkKind } from './uplink.js';
export { uplinkKey, sameUplink } from './uplink.js';
export {
  InterfaceWatcher,
  type InterfaceWatcherEvents,
  type InterfaceWatcherOptions,
} from './interface-watcher.js';
export { classifyInterface, readSysfsFacts, type InterfaceFacts } from './classify.js';
export { diffUplinks, type UplinkChange } from './diff.js';
export { createIgnoreRule, DEFAULT_IGNORED_NAMES, globToRegExp } from './ignore.js';
export {
  probeGateway,
  reachabilityFromNeighbour,
  type GatewayProbeResult,
} from './gateway-probe.js';
