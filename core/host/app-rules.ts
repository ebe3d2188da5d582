import {
  APP_KINDS,
  OBJECTIVE_LIST,
  UDP_SEMANTICS_LIST,
  v,
  type AppRule,
  type AppRulePatch,
  type Validator,
} from './contract.js';
import { BraidError } from '../util/errors.js';

/**
 * Per-app rules. The shape is core/proxy/rules.ts's `AppRule` (being written in
 * parallel); until it lands, the host keeps its own book here with the same fields,
 * and switches to `RuleBook` / `parseAppRules` from there when it does.
 */
export const validateAppRule: Validator<AppRule> = v.object<AppRule>({
  appId: v.string(128, /^[\w.:@/+-]+$/),
  name: v.string(128),
  kind: v.oneOf(APP_KINDS),
  udpSemantics: v.oneOf(UDP_SEMANTICS_LIST),
  priorities: v.distinctList(OBJECTIVE_LIST),
  lossVsThroughput: v.number(0, 1),
  latencyVsThroughput: v.number(0, 1),
  bypass: v.boolean(),
});

/** DESIGN §3: the default priority order is loss before throughput. */
export function defaultRule(appId: string, name = appId): AppRule {
  return {
    appId,
    name,
    kind: 'other',
    udpSemantics: 'unreliable-unordered',
    priorities: ['loss', 'throughput'],
    lossVsThroughput: 0.5,
    latencyVsThroughput: 0.5,
    bypass: false,
  };
}

export class RuleBook {
  private readonly rules = new Map<string, AppRule>();

  constructor(rules: readonly AppRule[] = []) {
    for (const r of rules) this.rules.set(r.appId, { ...r, priorities: [...r.priorities] });
  }

  get(appId: string): AppRule | undefined {
    const r = this.rules.get(appId);
    return r === undefined ? undefined : { ...r, priorities: [...r.priorities] };
  }

  has(appId: string): boolean {
    return this.rules.has(appId);
  }

  /** Adds a rule unless the app has one already (a saved rule beats a default). */
  ensure(rule: AppRule): AppRule {
    if (!this.rules.has(rule.appId)) this.rules.set(rule.appId, rule);
    return this.get(rule.appId)!;
  }

  apply(patch: AppRulePatch): AppRule {
    const current = this.rules.get(patch.appId);
    if (current === undefined)
      throw new BraidError('BRAID_ERR_USAGE', 'no rule for this app', { value: patch.appId });
    const next: AppRule = {
      ...current,
      ...(patch.udpSemantics === undefined ? {} : { udpSemantics: patch.udpSemantics }),
      ...(patch.priorities === undefined ? {} : { priorities: [...patch.priorities] }),
      ...(patch.lossVsThroughput === undefined ? {} : { lossVsThroughput: patch.lossVsThroughput }),
      ...(patch.latencyVsThroughput === undefined
        ? {}
        : { latencyVsThroughput: patch.latencyVsThroughput }),
      ...(patch.bypass === undefined ? {} : { bypass: patch.bypass }),
    };
    this.rules.set(patch.appId, next);
    return this.get(patch.appId)!;
  }

  list(): AppRule[] {
    return [...this.rules.values()].map((r) => ({ ...r, priorities: [...r.priorities] }));
  }
}
