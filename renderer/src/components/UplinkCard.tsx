import { memo } from 'react';
import { selectUplink, useBraid } from '../store';
import { formatBytes, formatMs, formatPercent, formatRate } from '../format';
import { Sparkline } from './Sparkline';

const ms = (v: number): string => `${v.toFixed(0)} ms`;
const pct = (v: number): string => `${v.toFixed(1)} %`;
const rate = (v: number): string => formatRate(v).replace('bit/s', 'b/s');

export const UplinkCard = memo(function UplinkCard({ id }: { id: string }) {
  const u = useBraid(selectUplink(id));
  if (u === undefined) return null;
  const headingId = `uplink-${id}-name`;
  return (
    <article
      className={`card uplink state-${u.state}`}
      aria-labelledby={headingId}
      data-uplink={id}
    >
      <header className="card-head">
        <h3 id={headingId}>
          {u.name} <span className="muted">{u.id}</span>
        </h3>
        <span className={`badge badge-${u.state}`}>{u.state}</span>
      </header>
      <p className="muted small">
        {u.kind} · {u.address ?? 'no address'} · {u.transport ?? '—'} · role {u.role}
      </p>
      <dl className="metrics">
        <div>
          <dt>Latency</dt>
          <dd data-metric="latency">{formatMs(u.latencyMs)}</dd>
        </div>
        <div>
          <dt>Jitter</dt>
          <dd data-metric="jitter">{formatMs(u.jitterMs)}</dd>
        </div>
        <div>
          <dt>Loss</dt>
          <dd data-metric="loss">{formatPercent(u.lossRate)}</dd>
        </div>
        <div>
          <dt>Up / down</dt>
          <dd data-metric="throughput">
            {formatRate(u.upBps)} / {formatRate(u.downBps)}
          </dd>
        </div>
        <div>
          <dt>Used</dt>
          <dd>{formatBytes(u.usedBytes)}</dd>
        </div>
      </dl>
      <div className="charts">
        <Sparkline
          uplinkId={id}
          title="Latency"
          summary={formatMs(u.latencyMs)}
          series={[{ key: 'latency', label: 'srtt' }]}
          format={ms}
        />
        <Sparkline
          uplinkId={id}
          title="Jitter"
          summary={formatMs(u.jitterMs)}
          series={[{ key: 'jitter', label: 'jitter' }]}
          format={ms}
        />
        <Sparkline
          uplinkId={id}
          title="Loss"
          summary={formatPercent(u.lossRate)}
          series={[{ key: 'loss', label: 'loss' }]}
          format={pct}
        />
        <Sparkline
          uplinkId={id}
          title="Throughput"
          summary={`${formatRate(u.upBps)} up, ${formatRate(u.downBps)} down`}
          series={[
            { key: 'up', label: 'up' },
            { key: 'down', label: 'down' },
          ]}
          format={rate}
        />
      </div>
    </article>
  );
});
