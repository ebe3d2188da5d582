import { useEffect, useId, useRef, useState } from 'react';

interface Props {
  label: string;
  left: string;
  right: string;
  /** 0..1 as the engine holds it. */
  value: number;
  onCommit: (value: number) => void;
  name: string;
}

/** Commits while moving, at most every this many ms, and once more at the end. */
const COMMIT_EVERY_MS = 120;

/**
 * A 0..1 weight between two objectives, as a native range input (keyboard, pointer and
 * screen readers for free). While the user moves it the local value leads; otherwise
 * the engine's value does, so the slider always ends up showing what the engine holds.
 */
export function RuleSlider({ label, left, right, value, onCommit, name }: Props) {
  const id = useId();
  const [local, setLocal] = useState<number | null>(null);
  const timer = useRef<number | undefined>(undefined);
  const latest = useRef<number | null>(null);
  const release = useRef<number | undefined>(undefined);
  useEffect(
    () => () => {
      window.clearTimeout(timer.current);
      window.clearTimeout(release.current);
    },
    [],
  );
  // The local value leads until the engine holds it (quick key presses build on it, not
  // on the engine's older value); if the engine never confirms, its value wins again.
  useEffect(() => {
    if (local !== null && timer.current === undefined && Math.abs(value - local) < 0.005)
      setLocal(null);
  }, [value, local]);

  const flush = (): void => {
    timer.current = undefined;
    if (latest.current !== null) onCommit(latest.current);
  };

  const change = (v: number): void => {
    setLocal(v);
    latest.current = v;
    if (timer.current === undefined) timer.current = window.setTimeout(flush, COMMIT_EVERY_MS);
  };
  const end = (): void => {
    window.clearTimeout(timer.current);
    flush();
    latest.current = null;
    window.clearTimeout(release.current);
    release.current = window.setTimeout(() => setLocal(null), 2000);
  };
  const shown = local ?? value;
  const percent = Math.round(shown * 100);
  return (
    <div className="slider">
      <label htmlFor={id}>{label}</label>
      <div className="slider-row">
        <span aria-hidden="true">{left}</span>
        <input
          id={id}
          name={name}
          type="range"
          min={0}
          max={100}
          step={1}
          value={percent}
          aria-valuetext={`${100 - percent}% ${left}, ${percent}% ${right}`}
          onChange={(e) => change(Number(e.currentTarget.value) / 100)}
          onPointerUp={end}
          onKeyUp={end}
          onBlur={() => (latest.current === null ? undefined : end())}
        />
        <span aria-hidden="true">{right}</span>
      </div>
    </div>
  );
}
