// Certificates for the local PostgreSQL: a generated CA, a server certificate it signed for localhost and 127.0.0.1,
// and an unrelated CA for the wrong-CA tests. Keys come from Node's native RSA, certificates from node-forge (Node
// can parse X.509 but not issue it).
import crypto from 'node:crypto';
import { promisify } from 'node:util';

import forge from 'node-forge';

const certificateLifetimeMillis = 2 * 365 * 24 * 60 * 60 * 1000;
const generateKeyPair = promisify(crypto.generateKeyPair);

/** PEMs for a local CA, a server certificate it signed for localhost / 127.0.0.1, and an unrelated "other" CA. */
export interface TlsMaterial {
  readonly caPem: string;
  readonly otherCaPem: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
}

/** Generates the material, with native RSA keys. */
export async function createTlsMaterial(): Promise<TlsMaterial> {
  // Node's native RSA (on the thread pool, in parallel with initdb) rather than forge's seconds-long pure-JS one.
  const newKeyPem = async (): Promise<string> => {
    const pair = await generateKeyPair('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    });
    return pair.privateKey;
  };
  const [caKeyPem, otherKeyPem, serverKeyPem] = await Promise.all([newKeyPem(), newKeyPem(), newKeyPem()]);
  const caKey = toForgeKey(caKeyPem);
  const ca = createCertificate('lambda-pg local CA', caKey);
  const server = createCertificate('localhost', toForgeKey(serverKeyPem), { cert: ca, key: caKey });
  const other = createCertificate('lambda-pg other CA', toForgeKey(otherKeyPem));
  const toPem = forge.pki.certificateToPem;
  return { caPem: toPem(ca), otherCaPem: toPem(other), serverCertPem: toPem(server), serverKeyPem };
}

function toForgeKey(pem: string): forge.pki.rsa.PrivateKey {
  return forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey;
}

/** A CA certificate when `issuer` is absent, else a server certificate for localhost / 127.0.0.1 signed by it. */
function createCertificate(
  commonName: string,
  key: forge.pki.rsa.PrivateKey,
  issuer?: { cert: forge.pki.Certificate; key: forge.pki.rsa.PrivateKey },
): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  cert.serialNumber = `01${crypto.randomBytes(15).toString('hex')}`; // the leading 01 keeps it positive
  cert.validity.notBefore = new Date(Date.now() - 60 * 60 * 1000); // tolerate a little clock skew
  cert.validity.notAfter = new Date(Date.now() + certificateLifetimeMillis);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : cert.subject.attributes);
  const identity = { name: 'subjectKeyIdentifier' };
  cert.setExtensions(
    issuer
      ? [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }, { type: 7, ip: '127.0.0.1' }] },
          identity,
          // Explicit bytes: forge's `keyIdentifier: true` would take the leaf's own key, not the issuer's.
          { name: 'authorityKeyIdentifier', keyIdentifier: issuer.cert.generateSubjectKeyIdentifier().getBytes() },
        ]
      : [
          { name: 'basicConstraints', critical: true, cA: true },
          { name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true },
          identity,
        ],
  );
  cert.sign(issuer ? issuer.key : key, forge.md.sha256.create());
  return cert;
}
