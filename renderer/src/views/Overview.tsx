import { useShallow } from 'zustand/react/shallow';
import { MetricChart } from '../components/MetricChart';
import { UplinkCard } from '../components/UplinkCard';
import { formatRate } from '../format';
import { selectAggregate, selectUplinkIds, useBraid } from '../store';

const rate = (v: number): string => formatRate(v).replace('bit/s', 'b/s');

export function Overview() {
  const ids = useBraid(useShallow(selectUplinkIds));
  const agg = useBraid(selectAggregate);
  return (
    <>
      <section className="card aggregate" aria-labelledby="aggregate-title">
        <header className="card-head">
          <h2 id="aggregate-title">All uplinks</h2>
          <span className="muted">
            {agg.uplinksUp} of {agg.uplinksTotal} up
          </span>
        </header>
        <p className="big" data-metric="aggregate">
          ↑ {formatRate(agg.upBps)} · ↓ {formatRate(agg.downBps)}
        </p>
        <MetricChart
          title="Aggregate throughput"
          summary={`${formatRate(agg.upBps)} up, ${formatRate(agg.downBps)} down`}
          series={[
            { key: 'up', label: 'up' },
            { key: 'down', label: 'down' },
          ]}
          format={rate}
        />
      </section>
      <h2 className="sr-only">Uplinks</h2>
      <div className="grid">
        {ids.map((id) => (
          <UplinkCard key={id} id={id} />
        ))}
      </div>
    </>
  );
}
