import type { UplinkKind } from './uplink.js';

/**
 * Interfaces that are never uplinks on their own, ignored unless the user turns the
 * defaults off: container and VM host-only bridges (Docker, libvirt, LXC/LXD, CNI
 * plugins, Podman, VirtualBox, VMware).
 */
export const DEFAULT_IGNORED_NAMES: readonly string[] = [
  'docker*',
  'br-*',
  'virbr*',
  'lxcbr*',
  'lxdbr*',
  'cni*',
  'flannel*',
  'cali*',
  'podman*',
  'vboxnet*',
  'vmnet*',
];

/** Software interfaces that carry no traffic of their own (ifb: tc mirroring; nlmon). */
const IGNORED_LINK_KINDS = new Set(['ifb', 'nlmon']);

/** `*` any run of characters, `?` one character; everything else literal. */
export function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\*?]/g, (c) =>
    c === '*' ? '.*' : c === '?' ? '.' : `\\${c}`,
  );
  return new RegExp(`^${body}$`);
}

export interface IgnoreInput {
  name: string;
  kind: UplinkKind;
  linkKind?: string;
  /** Bridge or bond the interface is a port of: its traffic leaves through the master. */
  master?: string;
}

export type IgnoreRule = (u: IgnoreInput) => boolean;

/**
 * The ignore rule: loopback, ports of a bridge or bond (this covers the veth ends of
 * containers, which Docker and Podman attach to their bridge), the default names,
 * then the user's names or globs.
 */
export function createIgnoreRule(
  userPatterns: readonly string[] = [],
  defaults = true,
): IgnoreRule {
  const user = userPatterns.map(globToRegExp);
  const builtIn = defaults ? DEFAULT_IGNORED_NAMES.map(globToRegExp) : [];
  return (u) => {
    if (user.some((re) => re.test(u.name))) return true;
    if (!defaults) return false;
    if (u.kind === 'loopback' || u.master !== undefined) return true;
    if (u.linkKind !== undefined && IGNORED_LINK_KINDS.has(u.linkKind)) return true;
    return builtIn.some((re) => re.test(u.name));
  };
}
