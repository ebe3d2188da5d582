/**
 * Self-signed X.509 v3 certificates for the relay's TLS identity (DESIGN §3: the
 * client pins the certificate's SHA-256 fingerprint, so no CA is involved). The DER is
 * written here with a small ASN.1 writer instead of an npm dependency; Node parses
 * the result with `crypto.X509Certificate` and serves it with `node:tls`.
 *
 * Ed25519 is the default: Node's TLS 1.3 (OpenSSL 3) accepts it as a signature
 * scheme (RFC 8446 §4.2.3). ECDSA P-256 is kept for peers whose TLS stack lacks it.
 */
import {
  createHash,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto';
import { BraidError } from '../util/errors.js';

export type CertificateAlgorithm = 'ed25519' | 'p256';

export interface CertificateOptions {
  /** Subject and issuer common name. */
  commonName: string;
  /** Validity period in days, from `now`. */
  days: number;
  algorithm?: CertificateAlgorithm;
  /** Start of validity; defaults to the current wall-clock time. */
  now?: Date;
}

export interface SelfSignedCertificate {
  keyPem: string;
  certPem: string;
  /** Lowercase hex SHA-256 of the certificate DER, no colons. */
  fingerprint: string;
}

// ---------------------------------------------------------------------------
// ASN.1 DER writer (ITU-T X.690 §10). Each function returns one complete TLV.

const TAG_INTEGER = 0x02;
const TAG_BIT_STRING = 0x03;
const TAG_OCTET_STRING = 0x04;
const TAG_OID = 0x06;
const TAG_UTF8_STRING = 0x0c;
const TAG_UTC_TIME = 0x17;
const TAG_GENERALIZED_TIME = 0x18;
const TAG_SEQUENCE = 0x30;
const TAG_SET = 0x31;
const TAG_BOOLEAN = 0x01;

function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

/** X.690 §8.1.3: short form below 128, else 0x80|n followed by n big-endian bytes. */
function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function derSequence(...items: Buffer[]): Buffer {
  return tlv(TAG_SEQUENCE, Buffer.concat(items));
}

export function derSet(...items: Buffer[]): Buffer {
  return tlv(TAG_SET, Buffer.concat(items));
}

/** A non-negative INTEGER from big-endian magnitude bytes, minimally encoded (X.690 §8.3.2). */
export function derUnsignedInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  let body = magnitude.subarray(start);
  if (body.length === 0) body = Buffer.from([0]);
  // A set top bit would read as negative in two's complement.
  if ((body[0]! & 0x80) !== 0) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(TAG_INTEGER, body);
}

export function derSmallInteger(value: number): Buffer {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new BraidError('BRAID_ERR_INTERNAL', 'DER integer out of range', { value });
  }
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return derUnsignedInteger(b);
}

export function derBoolean(value: boolean): Buffer {
  return tlv(TAG_BOOLEAN, Buffer.from([value ? 0xff : 0x00]));
}

/** OBJECT IDENTIFIER from dotted form (X.690 §8.19: first two arcs packed, base-128 arcs). */
export function derOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((a) => Number(a));
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) {
    throw new BraidError('BRAID_ERR_INTERNAL', 'malformed OID', { value: dotted });
  }
  const out: number[] = [];
  const push = (arc: number): void => {
    const groups: number[] = [arc % 128];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) {
      groups.unshift((n % 128) | 0x80);
    }
    out.push(...groups);
  };
  push(arcs[0]! * 40 + arcs[1]!);
  for (const arc of arcs.slice(2)) push(arc);
  return tlv(TAG_OID, Buffer.from(out));
}

export function derUtf8String(text: string): Buffer {
  return tlv(TAG_UTF8_STRING, Buffer.from(text, 'utf8'));
}

export function derOctetString(bytes: Buffer): Buffer {
  return tlv(TAG_OCTET_STRING, bytes);
}

/** BIT STRING of whole bytes (no unused bits). */
export function derBitString(bytes: Buffer): Buffer {
  return tlv(TAG_BIT_STRING, Buffer.concat([Buffer.from([0]), bytes]));
}

/**
 * KeyUsage with only digitalSignature (bit 0) set: a named-bit BIT STRING drops its
 * trailing zero bits in DER (X.690 §11.2.2), so 7 of the 8 bits are unused.
 */
const KEY_USAGE_DIGITAL_SIGNATURE = tlv(TAG_BIT_STRING, Buffer.from([7, 0x80]));

/** Context-specific constructed tag [n] EXPLICIT. */
export function derExplicit(tagNumber: number, inner: Buffer): Buffer {
  return tlv(0xa0 | tagNumber, inner);
}

/** RFC 5280 §4.1.2.5: UTCTime for years 1950–2049, GeneralizedTime otherwise; always UTC, seconds, no fraction. */
export function derTime(date: Date): Buffer {
  const year = date.getUTCFullYear();
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const rest =
    pad(date.getUTCMonth() + 1) +
    pad(date.getUTCDate()) +
    pad(date.getUTCHours()) +
    pad(date.getUTCMinutes()) +
    pad(date.getUTCSeconds()) +
    'Z';
  if (year >= 1950 && year < 2050) {
    return tlv(TAG_UTC_TIME, Buffer.from(pad(year % 100) + rest, 'ascii'));
  }
  return tlv(TAG_GENERALIZED_TIME, Buffer.from(pad(year, 4) + rest, 'ascii'));
}

// ---------------------------------------------------------------------------
// Certificate

const OID_ED25519 = '1.3.101.112'; // RFC 8410 §3
const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2'; // RFC 5758 §3.2
const OID_COMMON_NAME = '2.5.4.3';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_EXT_KEY_USAGE = '2.5.29.37';
const OID_SUBJECT_KEY_ID = '2.5.29.14';
const OID_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

const DAY_MS = 24 * 60 * 60 * 1000;

function signatureAlgorithm(algorithm: CertificateAlgorithm): Buffer {
  // RFC 8410 §3 and RFC 5758 §3.2: the parameters field is absent for both.
  return derSequence(derOid(algorithm === 'ed25519' ? OID_ED25519 : OID_ECDSA_SHA256));
}

function name(commonName: string): Buffer {
  return derSequence(derSet(derSequence(derOid(OID_COMMON_NAME), derUtf8String(commonName))));
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical
    ? derSequence(derOid(oid), derBoolean(true), derOctetString(value))
    : derSequence(derOid(oid), derOctetString(value));
}

function generateKey(algorithm: CertificateAlgorithm): {
  privateKey: KeyObject;
  publicKey: KeyObject;
} {
  return algorithm === 'ed25519'
    ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('ec', { namedCurve: 'P-256' });
}

/** Builds and signs a self-signed certificate for a fresh key pair. */
export function createSelfSignedCertificate(options: CertificateOptions): SelfSignedCertificate {
  const algorithm = options.algorithm ?? 'ed25519';
  if (!Number.isInteger(options.days) || options.days < 1) {
    throw new BraidError('BRAID_ERR_USAGE', 'certificate validity must be a whole number of days', {
      value: options.days,
    });
  }
  const cnBytes = Buffer.byteLength(options.commonName, 'utf8');
  // RFC 5280 Appendix A: ub-common-name is 64.
  if (cnBytes === 0 || options.commonName.length > 64) {
    throw new BraidError('BRAID_ERR_USAGE', 'certificate common name must be 1 to 64 characters', {
      value: options.commonName,
    });
  }
  const { privateKey, publicKey } = generateKey(algorithm);
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // One hour of slack for peers whose clock runs behind.
  const start = new Date((options.now ?? new Date()).getTime() - 60 * 60 * 1000);
  start.setUTCMilliseconds(0);
  const end = new Date(start.getTime() + options.days * DAY_MS);
  // RFC 5280 §4.1.2.2: positive, at most 20 bytes; 16 random bytes with the top bit clear.
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const subject = name(options.commonName);
  const keyId = createHash('sha1').update(spki).digest();
  const tbs = derSequence(
    derExplicit(0, derSmallInteger(2)), // v3
    derUnsignedInteger(serial),
    signatureAlgorithm(algorithm),
    subject,
    derSequence(derTime(start), derTime(end)),
    subject,
    spki,
    derExplicit(
      3,
      derSequence(
        extension(OID_BASIC_CONSTRAINTS, true, derSequence()),
        // digitalSignature only: TLS 1.3 signs the handshake, it never encrypts to the key.
        extension(OID_KEY_USAGE, true, KEY_USAGE_DIGITAL_SIGNATURE),
        extension(OID_EXT_KEY_USAGE, false, derSequence(derOid(OID_SERVER_AUTH))),
        extension(OID_SUBJECT_KEY_ID, false, derOctetString(keyId)),
      ),
    ),
  );
  const signature =
    algorithm === 'ed25519' ? sign(null, tbs, privateKey) : sign('sha256', tbs, privateKey);
  const der = derSequence(tbs, signatureAlgorithm(algorithm), derBitString(signature));
  const certPem = toPem('CERTIFICATE', der);
  const keyPem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyPem, certPem, fingerprint: sha256Hex(der) };
}

function toPem(label: string, der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

function sha256Hex(der: Uint8Array): string {
  return createHash('sha256').update(der).digest('hex');
}

/**
 * SHA-256 of a certificate's DER as lowercase hex without colons: the value pinned in
 * invites. Accepts the DER itself or a PEM string.
 */
export function certificateFingerprint(certDerOrPem: Uint8Array | string): string {
  if (typeof certDerOrPem !== 'string') return sha256Hex(certDerOrPem);
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certDerOrPem);
  } catch (err) {
    throw new BraidError('BRAID_ERR_CONFIG', 'not a PEM certificate', { cause: err });
  }
  return sha256Hex(cert.raw);
}
