import { X509Certificate, createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  certificateFingerprint,
  createSelfSignedCertificate,
  derOid,
  derTime,
  derUnsignedInteger,
} from '../../../core/handshake/certificate.js';
import { isBraidError } from '../../../core/util/errors.js';

describe('DER writer', () => {
  it('encodes OIDs with the first two arcs packed and multi-byte arcs in base 128', () => {
    // X.690 §8.19.5 example values: 1.2.840.113549 is the RSADSI arc.
    expect(derOid('1.2.840.113549').toString('hex')).toBe('06062a864886f70d');
    expect(derOid('1.3.101.112').toString('hex')).toBe('06032b6570');
  });

  it('encodes integers minimally and adds a zero byte when the top bit is set', () => {
    expect(derUnsignedInteger(Buffer.from([0, 0, 5])).toString('hex')).toBe('020105');
    expect(derUnsignedInteger(Buffer.from([0x80])).toString('hex')).toBe('02020080');
    expect(derUnsignedInteger(Buffer.from([0, 0])).toString('hex')).toBe('020100');
  });

  it('uses UTCTime before 2050 and GeneralizedTime from 2050 (RFC 5280 §4.1.2.5)', () => {
    expect(derTime(new Date(Date.UTC(2049, 11, 31, 23, 59, 58))).toString('ascii', 2)).toBe(
      '491231235958Z',
    );
    expect(derTime(new Date(Date.UTC(2049, 0, 1)))[0]).toBe(0x17);
    const late = derTime(new Date(Date.UTC(2050, 0, 2, 3, 4, 5)));
    expect(late[0]).toBe(0x18);
    expect(late.toString('ascii', 2)).toBe('20500102030405Z');
  });
});

describe.each(['ed25519', 'p256'] as const)('self-signed %s certificate', (algorithm) => {
  const now = new Date(Date.UTC(2030, 5, 1, 12, 0, 0));
  const generated = createSelfSignedCertificate({
    commonName: 'braid relay',
    days: 30,
    algorithm,
    now,
  });
  const cert = new X509Certificate(generated.certPem);

  it('parses as an X.509 certificate with the requested subject, issuer and validity', () => {
    expect(cert.subject).toBe('CN=braid relay');
    expect(cert.issuer).toBe('CN=braid relay');
    expect(cert.ca).toBe(false);
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    expect(from).toBeLessThanOrEqual(now.getTime());
    expect(to - from).toBe(30 * 24 * 3600 * 1000);
  });

  it('verifies with its own public key, which matches the private key', () => {
    expect(cert.verify(cert.publicKey)).toBe(true);
    const privateKey = createPrivateKey(generated.keyPem);
    expect(
      createPublicKey(privateKey)
        .export({ type: 'spki', format: 'der' })
        .equals(cert.publicKey.export({ type: 'spki', format: 'der' })),
    ).toBe(true);
    const message = Buffer.from('proof of possession');
    const digest = algorithm === 'ed25519' ? null : 'sha256';
    expect(verify(digest, message, cert.publicKey, sign(digest, message, privateKey))).toBe(true);
  });

  it('does not verify under another certificate key', () => {
    const other = new X509Certificate(
      createSelfSignedCertificate({ commonName: 'other', days: 1, algorithm }).certPem,
    );
    expect(cert.verify(other.publicKey)).toBe(false);
  });

  it('reports the fingerprint Node computes, lowercase hex without colons', () => {
    const expected = cert.fingerprint256.replaceAll(':', '').toLowerCase();
    expect(generated.fingerprint).toBe(expected);
    expect(generated.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(certificateFingerprint(generated.certPem)).toBe(expected);
    expect(certificateFingerprint(cert.raw)).toBe(expected);
  });
});

describe('createSelfSignedCertificate', () => {
  it('gives each certificate a fresh key and serial', () => {
    const a = createSelfSignedCertificate({ commonName: 'x', days: 1 });
    const b = createSelfSignedCertificate({ commonName: 'x', days: 1 });
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(new X509Certificate(a.certPem).serialNumber).not.toBe(
      new X509Certificate(b.certPem).serialNumber,
    );
  });

  it('refuses a non-positive validity and an empty common name with BRAID_ERR_USAGE', () => {
    expect(() => createSelfSignedCertificate({ commonName: 'x', days: 0 })).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_USAGE' }),
    );
    expect(() => createSelfSignedCertificate({ commonName: '', days: 1 })).toThrow(
      expect.objectContaining({ code: 'BRAID_ERR_USAGE' }),
    );
  });

  it('rejects text that is not a PEM certificate when fingerprinting', () => {
    try {
      certificateFingerprint('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
      expect.unreachable();
    } catch (err) {
      expect(isBraidError(err, 'BRAID_ERR_CONFIG')).toBe(true);
    }
  });
});
