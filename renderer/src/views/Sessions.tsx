import { formatBytes, formatPercent, formatRate } from '../format';
import { selectSessions, useBraid } from '../store';

export function Sessions() {
  const sessions = useBraid(selectSessions);
  return (
    <table className="table">
      <caption>
        Sessions open on the association, with the live split of each over the paths
      </caption>
      <thead>
        <tr>
          <th scope="col">Session</th>
          <th scope="col">App</th>
          <th scope="col">Peer target</th>
          <th scope="col">Semantics</th>
          <th scope="col">State</th>
          <th scope="col">Sent</th>
          <th
            scope="col"
            title="Bytes sent again on the fastest path while their first copy was still on its way over a slower one: what striping cost this session in extra traffic"
          >
            Sent again
          </th>
          <th scope="col">Rate</th>
          <th scope="col">Split over paths</th>
        </tr>
      </thead>
      <tbody>
        {sessions.length === 0 && (
          <tr>
            <td colSpan={9}>No session is open.</td>
          </tr>
        )}
        {sessions.map((s) => {
          const text =
            s.split.map((p) => `${p.uplinkId} ${Math.round(p.share * 100)}%`).join(', ') ||
            'nothing sent yet';
          return (
            <tr key={s.id} data-session={s.id}>
              <th scope="row">{s.id}</th>
              <td>{s.appName}</td>
              <td>{s.target}</td>
              <td>{s.semantics}</td>
              <td>{s.state}</td>
              <td data-bytes={s.bytes}>{formatBytes(s.bytes)}</td>
              <td data-reinjected={s.reinjectedBytes}>
                {formatBytes(s.reinjectedBytes)}
                {s.reinjectedBytes > 0 && s.bytes > 0 && (
                  <span className="small muted">
                    {' '}
                    ({formatPercent(s.reinjectedBytes / s.bytes)})
                  </span>
                )}
              </td>
              <td>{formatRate(s.rateBps)}</td>
              <td>
                <div className="split" role="img" aria-label={text}>
                  {s.split.map((p) => (
                    <span
                      key={p.pathId}
                      className={`split-part split-${p.uplinkId}`}
                      style={{ flexGrow: p.share }}
                      title={`${p.uplinkId} ${Math.round(p.share * 100)}%`}
                    />
                  ))}
                </div>
                <span className="small muted">{text}</span>
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
