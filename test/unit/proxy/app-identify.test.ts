import { describe, expect, it } from 'vitest';
import {
  appIdentity,
  createAppIdentifier,
  isBoundaryProcess,
  parseProcNet,
  UNKNOWN_APP,
} from '../../../core/proxy/app-identify.js';

describe('app identification, pure parts', () => {
  it('parses /proc/net/tcp and tcp6 rows (addresses in host byte order, IPv4-mapped as IPv4)', () => {
    const tcp = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:0438 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:D431 0100007F:0438 01 00000000:00000000 00:00000000 00000000  1000        0 67890 1 0000000000000000 20 4 30 10 -1',
    ].join('\n');
    expect(parseProcNet(tcp)).toEqual([
      {
        localAddress: '127.0.0.1',
        localPort: 1080,
        remoteAddress: '0.0.0.0',
        remotePort: 0,
        uid: 1000,
        inode: 12345,
      },
      {
        localAddress: '127.0.0.1',
        localPort: 54321,
        remoteAddress: '127.0.0.1',
        remotePort: 1080,
        uid: 1000,
        inode: 67890,
      },
    ]);
    const tcp6 = [
      '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000000000000000000001000000:D431 0000000000000000FFFF00000100007F:0438 01 00000000:00000000 00:00000000 00000000  1000        0 111 1',
      '   1: 0000000000000000FFFF00000100007F:D432 00000000000000000000000001000000:0438 01 00000000:00000000 00:00000000 00000000     0        0 222 1',
    ].join('\n');
    const rows = parseProcNet(tcp6);
    expect(rows[0]).toMatchObject({
      localAddress: '::1',
      localPort: 54321,
      remoteAddress: '127.0.0.1',
    });
    expect(rows[1]).toMatchObject({
      localAddress: '127.0.0.1',
      remoteAddress: '::1',
      uid: 0,
      inode: 222,
    });
  });

  it('stops the parent walk at shells, terminals, init and session managers', () => {
    for (const name of [
      'bash',
      '-bash',
      '/bin/zsh',
      'systemd',
      'gnome-terminal-server',
      'tmux: server',
      'sshd',
      'explorer.exe',
    ])
      expect(isBoundaryProcess(name)).toBe(true);
    for (const name of ['firefox', 'node', 'steam', 'make', 'Web Content'])
      expect(isBoundaryProcess(name)).toBe(false);
  });

  it('names interpreters by their script, everything else by its executable', () => {
    expect(
      appIdentity('/usr/bin/node', ['node', '--import', 'tsx', '/srv/app.ts', '--port', '1']),
    ).toEqual({
      appId: '/usr/bin/node /srv/app.ts',
      name: 'app.ts',
    });
    expect(appIdentity('/usr/bin/python3.12', ['python3', '-m', 'http.server'])).toEqual({
      appId: '/usr/bin/python3.12 -m http.server',
      name: 'http.server',
    });
    expect(
      appIdentity('/usr/bin/java', ['java', '-Xmx1g', '-jar', '/opt/mc/server.jar']),
    ).toMatchObject({
      name: 'server.jar',
    });
    expect(
      appIdentity('/usr/lib/firefox/firefox', ['/usr/lib/firefox/firefox', '-contentproc']),
    ).toEqual({
      appId: '/usr/lib/firefox/firefox',
      name: 'firefox',
    });
    expect(appIdentity('/usr/bin/node', ['node', '-e', 'x'])).toEqual({
      appId: '/usr/bin/node',
      name: 'node',
    });
  });

  it('answers "unknown" where the platform tool is missing or the socket is not found', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      for (const platform of ['darwin', 'win32'] as const) {
        const id = createAppIdentifier({ platform });
        expect(
          await id.identify({ protocol: 'tcp', clientAddress: '127.0.0.1', clientPort: 1 }),
        ).toEqual(UNKNOWN_APP);
      }
    } finally {
      process.env.PATH = path;
    }
    expect(
      await createAppIdentifier({ platform: 'aix' }).identify({
        protocol: 'udp',
        clientAddress: '127.0.0.1',
        clientPort: 1,
      }),
    ).toBe(UNKNOWN_APP);
    if (process.platform === 'linux') {
      // Port 1 on loopback is nobody's client socket.
      expect(
        await createAppIdentifier().identify({
          protocol: 'tcp',
          clientAddress: '127.0.0.1',
          clientPort: 1,
        }),
      ).toEqual(UNKNOWN_APP);
    }
  });
});
