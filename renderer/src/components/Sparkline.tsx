import { memo } from 'react';
import { HISTORY_SECONDS } from '../../../core/host/contract';
import { ringOf, selectTick, useBraid } from '../store';
import type { SeriesKey, SeriesRing } from '../series-ring';

export interface SeriesSpec {
  key: SeriesKey;
  label: string;
}

interface Props {
  uplinkId: string;
  title: string;
  /** Text for screen readers: what the chart shows now. */
  summary: string;
  series: SeriesSpec[];
  format: (v: number) => string;
}

const W = 300;
const H = 64;
const WINDOW_MS = HISTORY_SECONDS * 1000;

/** Columns drawn across the chart: each gets the min and max of its samples (M4-like). */
const COLUMNS = 300;

/**
 * SVG path of one series over the last five minutes, ending at the newest sample.
 * Samples are folded into COLUMNS columns, each drawn as its min and max in time
 * order, so a spike survives and the path stays near 600 points at full history.
 */
function pathOf(ring: SeriesRing, key: SeriesKey, yMax: number): string {
  const n = ring.length;
  if (n === 0) return '';
  const end = ring.t[ring.index(n - 1)]!;
  const values = ring.values[key];
  const yOf = (v: number): string => (H - (Math.min(v, yMax) / yMax) * (H - 2) - 1).toFixed(1);
  let d = '';
  let pen = false;
  let col = -1;
  let lo = 0;
  let hi = 0;
  let loFirst = true;
  const flush = (): void => {
    if (col < 0) return;
    const x = ((col + 0.5) * (W / COLUMNS)).toFixed(1);
    const [a, b] = loFirst ? [lo, hi] : [hi, lo];
    d += `${pen ? 'L' : 'M'}${x} ${yOf(a)}`;
    if (b !== a) d += `L${x} ${yOf(b)}`;
    pen = true;
  };
  for (let k = 0; k < n; k++) {
    const i = ring.index(k);
    const v = values[i]!;
    if (Number.isNaN(v)) {
      flush();
      col = -1;
      pen = false;
      continue;
    }
    const c = Math.min(
      COLUMNS - 1,
      Math.max(0, Math.floor(COLUMNS - ((end - ring.t[i]!) / WINDOW_MS) * COLUMNS)),
    );
    if (c !== col) {
      flush();
      col = c;
      lo = hi = v;
      loFirst = true;
    } else if (v < lo) {
      lo = v;
      loFirst = false;
    } else if (v > hi) {
      hi = v;
      loFirst = true;
    }
  }
  flush();
  return d;
}

function maxOf(ring: SeriesRing, keys: SeriesSpec[]): number {
  let m = 0;
  for (const s of keys) {
    const values = ring.values[s.key];
    for (let k = 0; k < ring.length; k++) {
      const v = values[ring.index(k)]!;
      if (v > m) m = v;
    }
  }
  return m;
}

/**
 * A live five-minute chart drawn straight from the uplink's ring: one SVG path per
 * series, rebuilt on each tick with no intermediate arrays. Used for the per-uplink
 * cards, where 16 recharts charts at 5 Hz cost a whole core (see bench/ui.ts); the
 * aggregate chart keeps recharts. The SVG is hidden from screen readers, which get
 * the figure's label with the current value instead.
 */
export const Sparkline = memo(function Sparkline({
  uplinkId,
  title,
  summary,
  series,
  format,
}: Props) {
  useBraid(selectTick);
  const ring = ringOf(uplinkId);
  const top = maxOf(ring, series);
  // A round top so the scale does not twitch with every sample.
  const yMax = top <= 0 ? 1 : niceCeil(top);
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
      <svg
        data-v={ring.version}
        className="spark"
        viewBox={`0 0 ${W} ${H}`}
        preserveAspectRatio="none"
        aria-hidden="true"
        focusable="false"
      >
        <line className="spark-grid" x1="0" x2={W} y1="1" y2="1" />
        <line className="spark-grid" x1="0" x2={W} y1={H - 1} y2={H - 1} />
        {series.map((s) => (
          <path
            key={s.key}
            className={`spark-line line-${s.key}`}
            d={pathOf(ring, s.key, yMax)}
            vectorEffect="non-scaling-stroke"
          />
        ))}
      </svg>
      <span className="spark-max" aria-hidden="true">
        {format(yMax)}
      </span>
    </figure>
  );
});

function niceCeil(x: number): number {
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}
