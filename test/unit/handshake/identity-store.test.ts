import { X509Certificate } from 'node:crypto';
import {
  chmodSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  addClientKey,
  loadClientKeys,
  loadOrCreateServerIdentity,
} from '../../../core/handshake/identity-store.js';
import { BraidError } from '../../../core/util/errors.js';

const posix = process.platform !== 'win32';

let root: string;
let dir: string;
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'braid-identity-'));
  dir = join(root, 'state');
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function thrown(fn: () => unknown): BraidError {
  try {
    fn();
  } catch (err) {
    if (err instanceof BraidError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('server identity', () => {
  it.skipIf(!posix)('creates the directory 0700 and key and certificate 0600', () => {
    const identity = loadOrCreateServerIdentity(dir);
    expect(identity.created).toBe(true);
    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'key.pem'))).toBe(0o600);
    expect(mode(join(dir, 'cert.pem'))).toBe(0o600);
    // No temporary files are left behind.
    expect(readdirSync(dir).sort()).toEqual(['cert.pem', 'key.pem']);
  });

  it('reuses the stored identity on the next load', () => {
    const first = loadOrCreateServerIdentity(dir);
    const second = loadOrCreateServerIdentity(dir);
    expect(second.created).toBe(false);
    expect(second.fingerprint).toBe(first.fingerprint);
    expect(second.keyPem).toBe(first.keyPem);
    expect(second.certPem).toBe(first.certPem);
    const cert = new X509Certificate(second.certPem);
    expect(cert.fingerprint256.replaceAll(':', '').toLowerCase()).toBe(second.fingerprint);
  });

  it.skipIf(!posix)('refuses a key file others can read with BRAID_ERR_CONFIG naming it', () => {
    loadOrCreateServerIdentity(dir);
    const keyFile = join(dir, 'key.pem');
    chmodSync(keyFile, 0o644);
    const err = thrown(() => loadOrCreateServerIdentity(dir));
    expect(err.code).toBe('BRAID_ERR_CONFIG');
    expect(err.value).toBe(keyFile);
  });

  it('reports a corrupt key file with BRAID_ERR_CONFIG naming it', () => {
    loadOrCreateServerIdentity(dir);
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, 'not a key\n', { mode: 0o600 });
    const err = thrown(() => loadOrCreateServerIdentity(dir));
    expect(err.code).toBe('BRAID_ERR_CONFIG');
    expect(err.value).toBe(keyFile);
  });

  it('reports a corrupt certificate file with BRAID_ERR_CONFIG naming it', () => {
    loadOrCreateServerIdentity(dir);
    const certFile = join(dir, 'cert.pem');
    writeFileSync(certFile, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const err = thrown(() => loadOrCreateServerIdentity(dir));
    expect(err.code).toBe('BRAID_ERR_CONFIG');
    expect(err.value).toBe(certFile);
  });

  it('refuses a certificate that belongs to another key', () => {
    loadOrCreateServerIdentity(dir);
    const other = join(root, 'other');
    loadOrCreateServerIdentity(other);
    writeFileSync(join(dir, 'cert.pem'), readFileSync(join(other, 'cert.pem')));
    expect(thrown(() => loadOrCreateServerIdentity(dir)).code).toBe('BRAID_ERR_CONFIG');
  });

  it('refuses to replace an identity of which one file is missing', () => {
    loadOrCreateServerIdentity(dir);
    rmSync(join(dir, 'cert.pem'));
    const err = thrown(() => loadOrCreateServerIdentity(dir));
    expect(err.code).toBe('BRAID_ERR_CONFIG');
    expect(err.value).toBe(join(dir, 'cert.pem'));
  });
});

describe('client keys', () => {
  it('is empty before any key is added', () => {
    expect(loadClientKeys(dir)).toEqual([]);
  });

  it('stores added keys and loads them back', () => {
    const a = addClientKey(dir, 'laptop');
    const b = addClientKey(dir, 'phone');
    expect(a.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(a.key.length).toBe(32);
    expect(a.keyId).not.toBe(b.keyId);
    expect(a.key.equals(b.key)).toBe(false);
    const loaded = loadClientKeys(dir);
    expect(loaded.map((c) => c.name)).toEqual(['laptop', 'phone']);
    expect(loaded[0]!.keyId).toBe(a.keyId);
    expect(loaded[0]!.key.equals(a.key)).toBe(true);
    expect(loaded[1]!.key.equals(b.key)).toBe(true);
    const stored = JSON.parse(readFileSync(join(dir, 'clients.json'), 'utf8')) as {
      clients: Array<{ key: string }>;
    };
    expect(stored.clients[0]!.key).toBe(a.key.toString('base64url'));
  });

  it.skipIf(!posix)(
    'writes clients.json 0600 in a 0700 directory, with no temporary file left',
    () => {
      addClientKey(dir, 'laptop');
      expect(mode(dir)).toBe(0o700);
      expect(mode(join(dir, 'clients.json'))).toBe(0o600);
      expect(readdirSync(dir)).toEqual(['clients.json']);
    },
  );

  it('refuses a duplicate or empty name with BRAID_ERR_USAGE', () => {
    addClientKey(dir, 'laptop');
    expect(thrown(() => addClientKey(dir, 'laptop')).code).toBe('BRAID_ERR_USAGE');
    expect(thrown(() => addClientKey(dir, '')).code).toBe('BRAID_ERR_USAGE');
    expect(loadClientKeys(dir)).toHaveLength(1);
  });

  it.skipIf(!posix)('refuses a clients.json others can read', () => {
    addClientKey(dir, 'laptop');
    chmodSync(join(dir, 'clients.json'), 0o640);
    const err = thrown(() => loadClientKeys(dir));
    expect(err.code).toBe('BRAID_ERR_CONFIG');
    expect(err.value).toBe(join(dir, 'clients.json'));
  });

  it.each([
    ['not JSON', '{'],
    ['no clients list', '{"version":1}'],
    ['an unknown version', '{"version":2,"clients":[]}'],
    ['a bad key id', '{"version":1,"clients":[{"name":"a","keyId":"xyz","key":"AAAA"}]}'],
    [
      'a short key',
      `{"version":1,"clients":[{"name":"a","keyId":"0123456789abcdef","key":"${Buffer.alloc(16).toString('base64url')}"}]}`,
    ],
  ])('reports a clients.json with %s as corrupt', (_, content) => {
    addClientKey(dir, 'laptop');
    writeFileSync(join(dir, 'clients.json'), content, { mode: 0o600 });
    const err = thrown(() => loadClientKeys(dir));
    expect(err.code).toBe('BRAID_ERR_CONFIG');
    expect(err.value).toBe(join(dir, 'clients.json'));
  });
});
