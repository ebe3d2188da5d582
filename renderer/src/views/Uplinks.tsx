import { useState } from 'react';
import {
  UPLINK_ROLES,
  type PathView,
  type UplinkRole,
  type UplinkView,
} from '../../../core/host/contract';
import { api } from '../bridge';
import { describeCongestion, formatBytes } from '../format';
import { report } from '../report';
import { useBraid } from '../store';
import { useShallow } from 'zustand/react/shallow';

function CapEditor({ u }: { u: UplinkView }) {
  const [text, setText] = useState(u.capBytes === null ? '' : String(u.capBytes / 1e9));
  const save = (): void => {
    const trimmed = text.trim();
    const gb = Number(trimmed);
    if (trimmed !== '' && (!Number.isFinite(gb) || gb < 0)) {
      report(new Error(`data cap must be a number of GB, not "${trimmed}"`));
      return;
    }
    api
      .setUplink({ uplinkId: u.id, capBytes: trimmed === '' ? null : Math.round(gb * 1e9) })
      .catch(report);
  };
  return (
    <form
      className="inline"
      onSubmit={(e) => {
        e.preventDefault();
        save();
      }}
    >
      <label>
        <span className="sr-only">Monthly data cap of {u.name} in GB</span>
        <input
          type="text"
          inputMode="decimal"
          size={6}
          value={text}
          placeholder="none"
          onChange={(e) => setText(e.currentTarget.value)}
        />
      </label>
      GB <button type="submit">Save</button>
    </form>
  );
}

export function Uplinks() {
  const uplinks = useBraid(useShallow((s) => s.uplinkIds.map((id) => s.uplinks[id]!)));
  const paths = useBraid((s) => s.paths);
  const nameOf = (uplinkId: string): string =>
    uplinks.find((u) => u.id === uplinkId)?.name ?? uplinkId;
  // An uplink's newest live path (a replaced one lingers as closed for a while).
  const pathOf = (u: UplinkView): PathView | undefined =>
    paths
      .filter((p) => p.uplinkId === u.id && (p.state === 'active' || p.state === 'suspect'))
      .at(-1);
  return (
    <table className="table">
      <caption>Uplinks: how Braid may use each, and its data use</caption>
      <thead>
        <tr>
          <th scope="col">Uplink</th>
          <th scope="col">Kind</th>
          <th scope="col">Address</th>
          <th scope="col">State</th>
          <th scope="col">Role</th>
          <th scope="col">Congestion control</th>
          <th scope="col">Monthly cap</th>
          <th scope="col">Used</th>
        </tr>
      </thead>
      <tbody>
        {uplinks.map((u) => (
          <tr key={u.id} data-uplink={u.id}>
            <th scope="row">
              {u.name} <span className="muted">{u.id}</span>
            </th>
            <td>{u.kind}</td>
            <td>
              {u.address ?? '—'} ({u.transport ?? '—'})
            </td>
            <td>
              <span className={`badge badge-${u.state}`}>{u.state}</span>
            </td>
            <td>
              <label>
                <span className="sr-only">Role of {u.name}</span>
                <select
                  value={u.role}
                  onChange={(e) =>
                    void api
                      .setUplink({ uplinkId: u.id, role: e.currentTarget.value as UplinkRole })
                      .catch(report)
                  }
                >
                  {UPLINK_ROLES.map((r) => (
                    <option key={r} value={r}>
                      {r}
                    </option>
                  ))}
                </select>
              </label>
            </td>
            <td data-column="congestion">{describeCongestion(pathOf(u), paths, nameOf)}</td>
            <td>
              <CapEditor u={u} />
            </td>
            <td>
              {formatBytes(u.usedBytes)}
              {u.capBytes !== null && (
                <progress
                  max={u.capBytes}
                  value={Math.min(u.usedBytes, u.capBytes)}
                  aria-label={`${u.name}: ${formatBytes(u.usedBytes)} of ${formatBytes(u.capBytes)}`}
                />
              )}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
