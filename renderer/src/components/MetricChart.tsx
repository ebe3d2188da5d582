import { memo } from 'react';
import { Line, LineChart, ResponsiveContainer, XAxis, YAxis } from 'recharts';
import { aggregateRing, selectTick, useBraid } from '../store';
import type { Point } from '../series-ring';
import type { SeriesSpec } from './Sparkline';

interface Props {
  title: string;
  /** Text for screen readers: what the chart shows now. */
  summary: string;
  series: SeriesSpec[];
  format: (v: number) => string;
}

/**
 * The aggregate's live chart (recharts) over the aggregate ring: five minutes at one
 * point a second, the newest second live. It re-renders on each tick and
 * reads the ring's ready array; the SVG is hidden from screen readers, which get the
 * figure's label with the current value instead.
 */
export const MetricChart = memo(function MetricChart({ title, summary, series, format }: Props) {
  useBraid(selectTick);
  const data = aggregateRing().view() as Point[];
  return (
    <figure
      className="chart"
      role="img"
      aria-label={`${title}: ${summary}`}
      data-series={series.map((s) => s.key).join(',')}
    >
      <figcaption aria-hidden="true">
        {title} <span className="chart-now">{summary}</span>
      </figcaption>
      <div className="chart-plot" aria-hidden="true" data-v={aggregateRing().version}>
        <ResponsiveContainer width="100%" height={72}>
          <LineChart data={data} margin={{ top: 12, right: 4, bottom: 0, left: 0 }}>
            <XAxis dataKey="t" type="number" domain={['dataMin', 'dataMax']} hide />
            <YAxis width={52} tickCount={3} tickFormatter={format} fontSize={10} />
            {series.map((s) => (
              <Line
                key={s.key}
                dataKey={s.key}
                name={s.label}
                className={`line line-${s.key}`}
                type="linear"
                dot={false}
                isAnimationActive={false}
                strokeWidth={1.5}
              />
            ))}
          </LineChart>
        </ResponsiveContainer>
      </div>
    </figure>
  );
});
