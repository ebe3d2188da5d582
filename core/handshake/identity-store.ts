/**
 * The relay's state directory: its TLS identity (key.pem, cert.pem) and the client
 * keys it accepts (clients.json). Secrets are written owner-only (0600, directory
 * 0700) by writing a temporary file and renaming it over the old one, so a reader (the
 * relay looks keys up at each HELLO) never sees half a file, and a crash never leaves
 * one. A key file that others can read is refused rather than used: it may have leaked.
 */
import {
  X509Certificate,
  createPrivateKey,
  createPublicKey,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { BraidError } from '../util/errors.js';
import { createSelfSignedCertificate, certificateFingerprint } from './certificate.js';

export const SERVER_KEY_FILE = 'key.pem';
export const SERVER_CERT_FILE = 'cert.pem';
export const CLIENTS_FILE = 'clients.json';
/** Validity of a new relay certificate. Clients pin the fingerprint, so expiry only forces a new invite. */
export const CERTIFICATE_DAYS = 3650;

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
const CLIENT_KEY_LENGTH = 32;
const CLIENT_KEY_ID_LENGTH = 8;
const MAX_NAME_LENGTH = 64;

export interface ServerIdentity {
  keyPem: string;
  certPem: string;
  fingerprint: string;
  /** True when this call generated the identity. */
  created: boolean;
}

export interface ClientKey {
  name: string;
  /** 8 random bytes as hex; sent in HELLO to say which key signed the proof. */
  keyId: string;
  /** 32 random bytes; never sent, only proven (see keys.ts helloProof). */
  key: Buffer;
}

// POSIX permissions mean nothing on Windows, where Node reports 0o666 for every file.
const checkModes = process.platform !== 'win32';

function ensureDir(dir: string): void {
  if (existsSync(dir)) {
    if (!statSync(dir).isDirectory()) {
      throw new BraidError('BRAID_ERR_CONFIG', `state path ${dir} is not a directory`, {
        value: dir,
      });
    }
    return;
  }
  try {
    mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  } catch (err) {
    throw new BraidError('BRAID_ERR_CONFIG', `cannot create state directory ${dir}`, {
      value: dir,
      cause: err,
    });
  }
}

/** Writes `content` to `file` with mode 0600 via a temporary file and rename (atomic on POSIX). */
function writeSecretFile(file: string, content: string): void {
  const temp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  let fd: number | undefined;
  try {
    fd = openSync(temp, 'wx', FILE_MODE);
    writeSync(fd, content);
    // The data must be on disk before the rename makes it the live file.
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temp, file);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    if (existsSync(temp)) unlinkSync(temp);
    throw new BraidError('BRAID_ERR_CONFIG', `cannot write ${file}`, { value: file, cause: err });
  }
}

/** Reads a file holding a secret; refuses it when group or others may read or write it. */
function readSecretFile(file: string): string {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (err) {
    throw new BraidError('BRAID_ERR_CONFIG', `cannot read ${file}`, { value: file, cause: err });
  }
  if (checkModes && (mode & 0o077) !== 0) {
    throw new BraidError(
      'BRAID_ERR_CONFIG',
      `${file} is accessible to other users (mode ${(mode & 0o777).toString(8)}); ` +
        `run chmod 600 on it if it has not leaked, else delete it`,
      { value: file },
    );
  }
  return readText(file);
}

function readText(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new BraidError('BRAID_ERR_CONFIG', `cannot read ${file}`, { value: file, cause: err });
  }
}

function corrupt(file: string, what: string, cause?: unknown): BraidError {
  return new BraidError('BRAID_ERR_CONFIG', `${file} is corrupt: ${what}`, { value: file, cause });
}

/**
 * Loads the relay identity from `dir`, creating a new key and self-signed certificate
 * when neither file exists. One file without the other is an error: replacing the
 * identity silently would invalidate every invite.
 */
export function loadOrCreateServerIdentity(dir: string): ServerIdentity {
  ensureDir(dir);
  const keyFile = join(dir, SERVER_KEY_FILE);
  const certFile = join(dir, SERVER_CERT_FILE);
  const hasKey = existsSync(keyFile);
  const hasCert = existsSync(certFile);
  if (!hasKey && !hasCert) {
    const generated = createSelfSignedCertificate({
      commonName: 'braid relay',
      days: CERTIFICATE_DAYS,
    });
    // Key first: a crash between the two leaves a key without a certificate, reported below.
    writeSecretFile(keyFile, generated.keyPem);
    writeSecretFile(certFile, generated.certPem);
    return { ...generated, created: true };
  }
  if (!hasKey || !hasCert) {
    const missing = hasKey ? certFile : keyFile;
    throw new BraidError(
      'BRAID_ERR_CONFIG',
      `${missing} is missing; delete the other identity file to create a new identity ` +
        `(existing invites will stop working)`,
      { value: missing },
    );
  }
  const keyPem = readSecretFile(keyFile);
  const certPem = readText(certFile);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(keyPem);
  } catch (err) {
    throw corrupt(keyFile, 'not a PEM private key', err);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw corrupt(certFile, 'not a PEM certificate', err);
  }
  const fromKey = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const fromCert = cert.publicKey.export({ type: 'spki', format: 'der' });
  if (!fromKey.equals(fromCert)) {
    throw corrupt(certFile, `its public key does not match ${keyFile}`);
  }
  return { keyPem, certPem, fingerprint: certificateFingerprint(cert.raw), created: false };
}

interface ClientsFile {
  version: 1;
  clients: Array<{ name: string; keyId: string; key: string }>;
}

const KEY_ID_RE = /^[0-9a-f]{16}$/;
const BASE64URL_RE = /^[A-Za-z0-9_-]+$/;

function parseClients(file: string, text: string): ClientKey[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw corrupt(file, 'not JSON', err);
  }
  if (typeof data !== 'object' || data === null || !('clients' in data)) {
    throw corrupt(file, 'no "clients" list');
  }
  const { version, clients } = data as { version?: unknown; clients: unknown };
  if (version !== 1) throw corrupt(file, `unknown version ${JSON.stringify(version)}`);
  if (!Array.isArray(clients)) throw corrupt(file, '"clients" is not a list');
  const seen = new Set<string>();
  return clients.map((entry: unknown, i): ClientKey => {
    const at = `clients[${i}]`;
    if (typeof entry !== 'object' || entry === null) throw corrupt(file, `${at} is not an object`);
    const { name, keyId, key } = entry as Record<string, unknown>;
    if (typeof name !== 'string' || !validName(name)) throw corrupt(file, `${at}.name is invalid`);
    if (typeof keyId !== 'string' || !KEY_ID_RE.test(keyId)) {
      throw corrupt(file, `${at}.keyId must be ${CLIENT_KEY_ID_LENGTH * 2} lowercase hex`);
    }
    if (seen.has(keyId)) throw corrupt(file, `${at}.keyId ${keyId} appears twice`);
    seen.add(keyId);
    const bytes =
      typeof key === 'string' && BASE64URL_RE.test(key) ? Buffer.from(key, 'base64url') : undefined;
    if (bytes === undefined || bytes.length !== CLIENT_KEY_LENGTH) {
      throw corrupt(file, `${at}.key must be ${CLIENT_KEY_LENGTH} bytes in base64url`);
    }
    return { name, keyId, key: bytes };
  });
}

function validName(name: string): boolean {
  // Printable, no control characters: names are shown in logs and the dashboard.
  // eslint-disable-next-line no-control-regex
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && !/[\u0000-\u001f\u007f]/.test(name);
}

/** The client keys the relay accepts; none when clients.json does not exist yet. */
export function loadClientKeys(dir: string): ClientKey[] {
  const file = join(dir, CLIENTS_FILE);
  if (!existsSync(file)) return [];
  return parseClients(file, readSecretFile(file));
}

/** Generates a client key named `name` and stores it; the invite carries it to the client. */
export function addClientKey(dir: string, name: string): ClientKey {
  if (!validName(name)) {
    throw new BraidError(
      'BRAID_ERR_USAGE',
      `client name must be 1 to ${MAX_NAME_LENGTH} printable characters`,
      { value: name },
    );
  }
  ensureDir(dir);
  const existing = loadClientKeys(dir);
  if (existing.some((c) => c.name === name)) {
    throw new BraidError('BRAID_ERR_USAGE', `a client key named ${name} already exists`, {
      value: name,
    });
  }
  let keyId: string;
  do keyId = randomBytes(CLIENT_KEY_ID_LENGTH).toString('hex');
  while (existing.some((c) => c.keyId === keyId));
  const added: ClientKey = { name, keyId, key: randomBytes(CLIENT_KEY_LENGTH) };
  const all = [...existing, added];
  const content: ClientsFile = {
    version: 1,
    clients: all.map((c) => ({ name: c.name, keyId: c.keyId, key: c.key.toString('base64url') })),
  };
  writeSecretFile(join(dir, CLIENTS_FILE), JSON.stringify(content, null, 2) + '\n');
  return added;
}
