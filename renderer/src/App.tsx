import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { Apps } from './views/Apps';
import { Overview } from './views/Overview';
import { Sessions } from './views/Sessions';
import { Settings } from './views/Settings';
import { Uplinks } from './views/Uplinks';
import { useProblem } from './report';
import { selectConnection, selectWarnings, useBraid } from './store';

const VIEWS = [
  { id: 'overview', label: 'Overview', render: () => <Overview /> },
  { id: 'apps', label: 'Apps', render: () => <Apps /> },
  { id: 'sessions', label: 'Sessions', render: () => <Sessions /> },
  { id: 'uplinks', label: 'Uplinks', render: () => <Uplinks /> },
  { id: 'settings', label: 'Settings', render: () => <Settings /> },
] as const;
type ViewId = (typeof VIEWS)[number]['id'];

function viewFromHash(): ViewId {
  const h = window.location.hash.slice(1);
  return VIEWS.some((v) => v.id === h) ? (h as ViewId) : 'overview';
}

/** WAI-ARIA tabs: arrow keys move between tabs, Home/End jump, the panel is labelled by its tab. */
function Tabs({ current, onSelect }: { current: ViewId; onSelect: (v: ViewId) => void }) {
  const refs = useRef<Record<string, HTMLButtonElement | null>>({});
  const onKey = (e: KeyboardEvent): void => {
    const i = VIEWS.findIndex((v) => v.id === current);
    const next =
      e.key === 'ArrowRight'
        ? (i + 1) % VIEWS.length
        : e.key === 'ArrowLeft'
          ? (i - 1 + VIEWS.length) % VIEWS.length
          : e.key === 'Home'
            ? 0
            : e.key === 'End'
              ? VIEWS.length - 1
              : -1;
    if (next < 0) return;
    e.preventDefault();
    const id = VIEWS[next]!.id;
    onSelect(id);
    refs.current[id]?.focus();
  };
  return (
    <div role="tablist" aria-label="Views" className="tabs" onKeyDown={onKey}>
      {VIEWS.map((v) => (
        <button
          key={v.id}
          ref={(el) => {
            refs.current[v.id] = el;
          }}
          role="tab"
          id={`tab-${v.id}`}
          aria-selected={v.id === current}
          aria-controls={`panel-${v.id}`}
          tabIndex={v.id === current ? 0 : -1}
          onClick={() => onSelect(v.id)}
        >
          {v.label}
        </button>
      ))}
    </div>
  );
}

function StatusBar() {
  const connection = useBraid(selectConnection);
  const mode = useBraid((s) => s.mode);
  const association = useBraid((s) => s.association);
  const bypass = useBraid((s) => s.settings?.globalBypass ?? false);
  const problem = useProblem((s) => s.message);
  return (
    <div className="status">
      <span className={`dot dot-${connection}`} aria-hidden="true" />
      <span>
        Engine {connection === 'open' ? 'connected' : connection}
        {mode === 'demo' ? ' (demo)' : ''} · association {association}
        {bypass ? ' · global bypass on' : ''}
      </span>
      {problem !== null && (
        <span role="alert" className="problem">
          {problem}{' '}
          <button
            type="button"
            className="link"
            onClick={() => useProblem.setState({ message: null })}
          >
            dismiss
          </button>
        </span>
      )}
    </div>
  );
}

export function App() {
  const [view, setView] = useState<ViewId>(viewFromHash);
  const warnings = useBraid(selectWarnings);
  const loaded = useBraid((s) => s.loaded);
  useEffect(() => {
    const onHash = (): void => setView(viewFromHash());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  const select = (v: ViewId): void => {
    setView(v);
    history.replaceState(null, '', `#${v}`);
  };
  const current = VIEWS.find((v) => v.id === view)!;
  return (
    <>
      <header className="top">
        <h1>Braid</h1>
        <Tabs current={view} onSelect={select} />
      </header>
      <StatusBar />
      {warnings.length > 0 && (
        <ul className="warnings" role="alert">
          {warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      )}
      <main
        role="tabpanel"
        id={`panel-${view}`}
        aria-labelledby={`tab-${view}`}
        tabIndex={0}
        data-view={view}
      >
        {loaded ? current.render() : <p>Connecting to the engine…</p>}
      </main>
    </>
  );
}
