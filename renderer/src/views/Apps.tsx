import { memo, useId } from 'react';
import {
  SEMANTICS_LIST,
  type AppRulePatch,
  type AppView,
  type Objective,
} from '../../../core/host/contract';
import { api } from '../bridge';
import { RuleSlider } from '../components/RuleSlider';
import { formatRate } from '../format';
import { selectApps, useBraid } from '../store';
import { report } from '../report';

function patch(p: AppRulePatch): void {
  api.setAppRule(p).catch(report);
}

function move(list: Objective[], i: number, by: number): Objective[] {
  const out = [...list];
  const j = i + by;
  if (j < 0 || j >= out.length) return out;
  [out[i], out[j]] = [out[j]!, out[i]!];
  return out;
}

const AppRow = memo(function AppRow({ app }: { app: AppView }) {
  const r = app.rule;
  const headingId = useId();
  const semId = useId();
  return (
    <article className="card app" aria-labelledby={headingId} data-app={r.appId}>
      <header className="card-head">
        <h3 id={headingId}>
          {r.name} <span className="muted">{r.kind}</span>
        </h3>
        <span className={`badge badge-${app.route.kind}`}>
          {app.route.kind === 'association' ? 'striped' : app.route.kind}
        </span>
      </header>
      <p className="doing" data-testid="doing" aria-live="off">
        {app.doing} · {formatRate(app.rateBps)}
      </p>
      <div className="app-controls">
        <div className="field">
          <label htmlFor={semId}>Semantics of its UDP traffic</label>
          <select
            id={semId}
            value={r.udpSemantics}
            onChange={(e) =>
              patch({
                appId: r.appId,
                udpSemantics: e.currentTarget.value as AppRulePatch['udpSemantics'],
              })
            }
          >
            {SEMANTICS_LIST.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <fieldset className="priorities">
          <legend>Objective priority</legend>
          <ol>
            {r.priorities.map((o, i) => (
              <li key={o}>
                <span>{o}</span>
                <button
                  type="button"
                  aria-label={`Move ${o} up`}
                  disabled={i === 0}
                  onClick={() => patch({ appId: r.appId, priorities: move(r.priorities, i, -1) })}
                >
                  ↑
                </button>
                <button
                  type="button"
                  aria-label={`Move ${o} down`}
                  disabled={i === r.priorities.length - 1}
                  onClick={() => patch({ appId: r.appId, priorities: move(r.priorities, i, 1) })}
                >
                  ↓
                </button>
              </li>
            ))}
          </ol>
        </fieldset>
        <RuleSlider
          name="lossVsThroughput"
          label="Throughput ↔ low loss"
          left="throughput"
          right="low loss"
          value={r.lossVsThroughput}
          onCommit={(v) => patch({ appId: r.appId, lossVsThroughput: v })}
        />
        <RuleSlider
          name="latencyVsThroughput"
          label="Throughput ↔ low latency"
          left="throughput"
          right="low latency"
          value={r.latencyVsThroughput}
          onCommit={(v) => patch({ appId: r.appId, latencyVsThroughput: v })}
        />
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            name="bypass"
            checked={r.bypass}
            aria-checked={r.bypass}
            onChange={(e) => patch({ appId: r.appId, bypass: e.currentTarget.checked })}
          />
          Bypass Braid for {r.name}
        </label>
      </div>
    </article>
  );
});

export function Apps() {
  const apps = useBraid(selectApps);
  if (apps.length === 0) return <p>No app has a rule yet.</p>;
  return (
    <div className="list">
      {apps.map((a) => (
        <AppRow key={a.rule.appId} app={a} />
      ))}
    </div>
  );
}
