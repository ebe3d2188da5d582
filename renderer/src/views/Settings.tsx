import { useEffect, useState } from 'react';
import { api } from '../bridge';
import { report } from '../report';
import { selectSettings, useBraid } from '../store';

export function Settings() {
  const s = useBraid(selectSettings);
  const [invite, setInvite] = useState('');
  const [port, setPort] = useState('');
  const [saved, setSaved] = useState<string | null>(null);
  useEffect(() => {
    if (s === null) return;
    setInvite(s.relayInvite ?? '');
    setPort(String(s.proxyPort));
    // Only when the engine's values change, not on every tick.
  }, [s?.relayInvite, s?.proxyPort]);
  if (s === null) return <p>Loading…</p>;
  return (
    <div className="settings">
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          api
            .setRelaySettings({ relayInvite: invite.trim() === '' ? null : invite.trim() })
            .then(() => setSaved('Relay invite saved.'), report);
        }}
      >
        <h2>Relay</h2>
        <label htmlFor="invite">Relay invite (printed by braid relay)</label>
        <input
          id="invite"
          type="text"
          spellCheck={false}
          autoComplete="off"
          value={invite}
          placeholder="braid://host:port#fingerprint?key=…"
          onChange={(e) => setInvite(e.currentTarget.value)}
        />
        <button type="submit">Save invite</button>
      </form>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          const n = Number(port);
          api.setSettings({ proxyPort: n }).then(() => setSaved('Proxy port saved.'), report);
        }}
      >
        <h2>Local proxy</h2>
        <label htmlFor="proxy-port">SOCKS5 port on 127.0.0.1</label>
        <input
          id="proxy-port"
          type="number"
          min={1024}
          max={65535}
          value={port}
          onChange={(e) => setPort(e.currentTarget.value)}
        />
        <button type="submit">Save port</button>
      </form>
      <div className="card">
        <h2>General</h2>
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            checked={s.globalBypass}
            aria-checked={s.globalBypass}
            onChange={(e) => void api.setBypass({ on: e.currentTarget.checked }).catch(report)}
          />
          Bypass Braid for every app
        </label>
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            checked={s.launchAtLogin}
            aria-checked={s.launchAtLogin}
            disabled={!s.launchAtLoginSupported}
            aria-describedby="login-note"
            onChange={(e) =>
              void api.setSettings({ launchAtLogin: e.currentTarget.checked }).catch(report)
            }
          />
          Launch at login
        </label>
        <p id="login-note" className="small muted">
          {s.launchAtLoginSupported
            ? 'Starts Braid in the tray when you log in.'
            : 'Only the desktop app can start at login.'}
        </p>
      </div>
      <p role="status" className="small">
        {saved}
      </p>
    </div>
  );
}
