/**
 * Uplink roles, as users know them from bonding products (issue: uplinks, item 5):
 * - primary: always used.
 * - secondary: used when the primaries are not enough (none of them can send now
 *   while data waits, i.e. demand exceeds their capacity), or when none is up.
 * - backup: used only when no primary or secondary path is up at all.
 * - never: not used (its paths are not even opened by the live path set).
 */
export type UplinkRole = 'primary' | 'secondary' | 'backup' | 'never';

export const UPLINK_ROLES: readonly UplinkRole[] = ['primary', 'secondary', 'backup', 'never'];

/** The stricter of two roles (a cap demotes to backup but never promotes). */
export function stricterRole(a: UplinkRole, b: UplinkRole): UplinkRole {
  return UPLINK_ROLES.indexOf(a) >= UPLINK_ROLES.indexOf(b) ? a : b;
}

export interface RoleTiers<P> {
  primary: P[];
  secondary: P[];
  backup: P[];
}

/**
 * Splits live paths by role, for the scheduler to try in order. Backup paths are
 * offered only when no primary or secondary path is up (`isUp`).
 */
export function roleTiers<P extends { role: UplinkRole }>(
  paths: readonly P[],
  isUp: (p: P) => boolean,
): RoleTiers<P> {
  const tiers: RoleTiers<P> = { primary: [], secondary: [], backup: [] };
  let upAbove = false;
  for (const p of paths) {
    switch (p.role) {
      case 'primary':
      case 'secondary':
        tiers[p.role].push(p);
        if (isUp(p)) upAbove = true;
        break;
      case 'backup':
        tiers.backup.push(p);
        break;
      case 'never':
        break;
    }
  }
  if (upAbove) tiers.backup = [];
  return tiers;
}
