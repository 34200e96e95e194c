import { inspect } from 'node:util';
import { resolveDbConfig } from '../../src/shared/db/config';
import { ConfigurationError } from '../../src/shared/db/errors';
import { errorText, thrown } from './support/errors';

const SECRET_ENV = { DB_SECRET_ID: 'app/db' };

describe('resolveDbConfig', () => {
  describe('precedence', () => {
    it('prefers an option over its environment variable', () => {
      const config = resolveDbConfig(
        { secretId: 'app/db', poolMax: 5, statementTimeoutMillis: 4000, ssl: 'require', logLevel: 'error', host: 'option.local' },
        { DB_POOL_MAX: '7', DB_STATEMENT_TIMEOUT_MS: '9000', DB_SSL: 'disable', DB_LOG_LEVEL: 'debug', DB_HOST: 'env.local' },
      );

      expect(config).toMatchObject({ poolMax: 5, statementTimeoutMillis: 4000, ssl: 'require', logLevel: 'error', host: 'option.local' });
    });

    it('prefers an environment variable over the default', () => {
      const config = resolveDbConfig({}, { ...SECRET_ENV, DB_POOL_MAX: '7', DB_CONNECT_TIMEOUT_MS: '1500', DB_SSL: 'require', DB_LOG_LEVEL: 'debug' });

      expect(config.poolMax).toBe(7);
      expect(config.connectTimeoutMillis).toBe(1500);
      expect(config.ssl).toBe('require');
      expect(config.logLevel).toBe('debug');
    });

    it('prefers the secretId option over every secret variable', () => {
      const config = resolveDbConfig({ secretId: 'from-option' }, { DB_SECRET_ID: 'a', RDS_SECRET_ARN: 'b', AWS_SECRET_NAME: 'c' });

      expect(config.secretId).toBe('from-option');
    });

    it('prefers a secret over DATABASE_URL', () => {
      const config = resolveDbConfig({}, { ...SECRET_ENV, DATABASE_URL: 'postgres://app:pw@localhost/app' });

      expect(config.secretId).toBe('app/db');
      expect(config.urlCredentials).toBeUndefined();
    });

    it('lets a databaseUrl option win over a secret id from the environment (a second database in a function)', () => {
      const config = resolveDbConfig({ databaseUrl: 'postgres://other:pw@other-host/otherdb' }, { ...SECRET_ENV });

      expect(config.secretId).toBeUndefined();
      expect(config.urlCredentials).toMatchObject({ user: 'other', host: 'other-host', database: 'otherdb' });
    });

    it('reads the connection overrides from DB_HOST, DB_PORT and DB_NAME', () => {
      const config = resolveDbConfig({}, { ...SECRET_ENV, DB_HOST: 'proxy.local', DB_PORT: '6432', DB_NAME: 'orders' });

      expect(config).toMatchObject({ host: 'proxy.local', port: 6432, database: 'orders' });
    });

    it('reads the credentials TTL and grace period in seconds', () => {
      const config = resolveDbConfig({}, { ...SECRET_ENV, DB_SECRET_TTL_SECONDS: '60', DB_SECRET_GRACE_SECONDS: '120' });

      expect(config.credentialsTtlMillis).toBe(60_000);
      expect(config.credentialsGraceMillis).toBe(120_000);
    });
  });

  describe('secret id aliases', () => {
    it.each([
      ['DB_SECRET_ID', 'app/db'],
      ['RDS_SECRET_ARN', 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc'],
      ['AWS_SECRET_NAME', 'legacy/db'],
    ])('accepts %s', (name, value) => {
      const config = resolveDbConfig({}, { [name]: value });

      expect(config.secretId).toBe(value);
    });

    it('prefers DB_SECRET_ID, then RDS_SECRET_ARN, then AWS_SECRET_NAME', () => {
      const all = resolveDbConfig({}, { DB_SECRET_ID: 'a', RDS_SECRET_ARN: 'b', AWS_SECRET_NAME: 'c' });
      const lastTwo = resolveDbConfig({}, { RDS_SECRET_ARN: 'b', AWS_SECRET_NAME: 'c' });

      expect(all.secretId).toBe('a');
      expect(lastTwo.secretId).toBe('b');
    });

    it('ignores a blank secret variable', () => {
      const config = resolveDbConfig({}, { DB_SECRET_ID: '  ', RDS_SECRET_ARN: 'b' });

      expect(config.secretId).toBe('b');
    });
  });

  describe('defaults', () => {
    it('uses the Lambda defaults of the spec', () => {
      const config = resolveDbConfig({}, SECRET_ENV);

      expect(config).toMatchObject({
        poolMax: 2,
        connectTimeoutMillis: 3000,
        statementTimeoutMillis: 15_000,
        queryTimeoutMillis: 17_000,
        idleInTransactionTimeoutMillis: 30_000,
        maxLifetimeSeconds: 1800,
        credentialsTtlMillis: 300_000,
        ssl: 'verify-full',
        operationTimeoutMillis: 10_000,
        logLevel: 'warn',
        applicationName: 'lambda-pg',
      });
    });

    it('derives the query timeout from the statement timeout plus two seconds', () => {
      const config = resolveDbConfig({}, { ...SECRET_ENV, DB_STATEMENT_TIMEOUT_MS: '5000' });

      expect(config.queryTimeoutMillis).toBe(7000);
    });

    it('names the pool after the Lambda function', () => {
      const config = resolveDbConfig({}, { ...SECRET_ENV, AWS_LAMBDA_FUNCTION_NAME: 'orders-api' });

      expect(config.applicationName).toBe('orders-api');
    });

    it('returns a frozen configuration', () => {
      const config = resolveDbConfig({}, SECRET_ENV);

      expect(Object.isFrozen(config)).toBe(true);
    });
  });

  describe('validation', () => {
    it.each([
      ['DB_POOL_MAX', 'abc', /DB_POOL_MAX.*integer from 1 to 1000/],
      ['DB_PORT', '70000', /DB_PORT.*integer from 1 to 65535/],
      ['DB_SSL', 'maybe', /DB_SSL.*one of verify-full, require, disable/],
      ['DB_LOG_LEVEL', 'loud', /DB_LOG_LEVEL.*one of debug, info, warn, error, silent/],
      ['DB_CONNECT_TIMEOUT_MS', '-1', /DB_CONNECT_TIMEOUT_MS.*integer/],
      ['DB_STATEMENT_TIMEOUT_MS', '1.5', /DB_STATEMENT_TIMEOUT_MS.*integer/],
    ])('rejects %s=%s, naming the variable and what was expected', (name, value, expected) => {
      const error = thrown(() => resolveDbConfig({}, { ...SECRET_ENV, [name]: value }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(expected);
    });

    it('names the option, not the variable, when an option holds a value it does not know', () => {
      const error = thrown(() => resolveDbConfig({ secretId: 'app/db', ssl: 'VERIFY-FULL' as never }, {}));

      expect(error.message).toBe('Expected option ssl to be one of verify-full, require, disable, got "VERIFY-FULL".');
    });

    it('reads PARAMETERS_SECRETS_EXTENSION_HTTP_PORT only when a secret is read through the extension', () => {
      const env = { PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: 'not-a-port' };

      expect(() => resolveDbConfig({ databaseUrl: 'postgres://app:pw@db.local/app' }, env)).not.toThrow();
      expect(() => resolveDbConfig({ secretId: 'app/db', secretSource: 'sdk' }, env)).not.toThrow();
      expect(() => resolveDbConfig({ secretId: 'app/db' }, env)).toThrow(/PARAMETERS_SECRETS_EXTENSION_HTTP_PORT to be an integer from 1 to 65535/);
    });

    it('says that DATABASE_URL is not read for DB_AUTH=iam while a secret is configured', () => {
      const error = thrown(() => resolveDbConfig({}, { DB_AUTH: 'iam', DB_SECRET_ID: 'app/db', DATABASE_URL: 'postgres://app@db.local/app' }));

      expect(error.message).toBe('DB_AUTH=iam needs DB_HOST and DB_USER to sign a token for (DATABASE_URL is not read while DB_SECRET_ID is set).');
    });

    it('rejects an out-of-range option', () => {
      const error = thrown(() => resolveDbConfig({ secretId: 'app/db', poolMax: 0 }, {}));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(/option poolMax to be an integer from 1 to 1000/);
    });

    it('rejects an out-of-range port option like the DB_PORT variable', () => {
      const tooHigh = thrown(() => resolveDbConfig({ secretId: 'app/db', port: 65_536 }, {}));
      const tooLow = thrown(() => resolveDbConfig({ secretId: 'app/db', port: 0 }, {}));

      expect(tooHigh).toBeInstanceOf(ConfigurationError);
      expect(tooHigh.message).toBe('Expected option port to be an integer from 1 to 65535, got 65536.');
      expect(tooLow.message).toBe('Expected option port to be an integer from 1 to 65535, got 0.');
      expect(resolveDbConfig({ secretId: 'app/db', port: 65_535 }, {}).port).toBe(65_535);
    });

    it('explains how to configure credentials when none are set', () => {
      const error = thrown(() => resolveDbConfig({}, {}));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(/DB_SECRET_ID/);
      expect(error.message).toMatch(/DATABASE_URL/);
    });
  });

  describe('DATABASE_URL', () => {
    it('reads user, host, port and database', () => {
      const config = resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@db.local:6543/orders' });

      expect(config.secretId).toBeUndefined();
      expect(config.urlCredentials).toMatchObject({ user: 'app', password: 'pw', host: 'db.local', port: 6543, database: 'orders' });
    });

    it('defaults the port to 5432 and the database to postgres', () => {
      const config = resolveDbConfig({}, { DATABASE_URL: 'postgresql://app:pw@db.local' });

      expect(config.urlCredentials).toMatchObject({ port: 5432, database: 'postgres' });
    });

    it.each([
      ['@ : /', 'p@ss:w/rd'],
      ['% ? #', '50%?off#1'],
      ['& =', 'a&b=c'],
      ['spaces', 'correct horse battery staple'],
      ['all of them', 'p@:/%?#&= x'],
    ])('decodes a percent-encoded password with %s', (_, password) => {
      const config = resolveDbConfig({}, { DATABASE_URL: `postgres://app:${encodeURIComponent(password)}@db.local:5432/app` });

      expect(config.urlCredentials?.password).toBe(password);
    });

    it('decodes a percent-encoded user name and database', () => {
      const config = resolveDbConfig({}, { DATABASE_URL: 'postgres://app%40corp:pw@db.local/my%20db' });

      expect(config.urlCredentials).toMatchObject({ user: 'app@corp', database: 'my db' });
    });

    it('never exposes the password through the configuration object', () => {
      const password = 'p@:/%?#&= x-Secret';
      const encoded = encodeURIComponent(password);

      const config = resolveDbConfig({}, { DATABASE_URL: `postgres://app:${encoded}@db.local/app` });

      const serialized = JSON.stringify(config);
      expect(serialized).not.toContain(password);
      expect(serialized).not.toContain(encoded);
      expect(inspect(config, { depth: 10 })).not.toContain(password);
      expect(Object.keys(config)).not.toContain('urlCredentials');
    });

    it('maps sslmode onto the ssl setting', () => {
      const requireMode = resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@db.local/app?sslmode=require' });
      const noVerify = resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@db.local/app?sslmode=no-verify' });
      const disable = resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@localhost/app?sslmode=disable' });

      expect(requireMode.ssl).toBe('require');
      expect(noVerify.ssl).toBe('require');
      expect(disable.ssl).toBe('disable');
    });

    it('accepts a DB_SSL that agrees with sslmode', () => {
      const config = resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@localhost/app?sslmode=disable', DB_SSL: 'disable' });

      expect(config.ssl).toBe('disable');
    });

    it('rejects a DB_SSL that disagrees with sslmode', () => {
      const error = thrown(() => resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@localhost/app?sslmode=disable', DB_SSL: 'verify-full' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(/sslmode/);
      expect(error.message).toMatch(/DB_SSL/);
    });

    it('rejects an sslmode it cannot honour', () => {
      const error = thrown(() => resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@db.local/app?sslmode=prefer' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(/sslmode/);
    });

    it('rejects an unknown parameter without quoting it or its value', () => {
      const error = thrown(() => resolveDbConfig({}, { DATABASE_URL: 'postgres://app@db.local/app?password=Param-Secret-1&application_name=x' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toBe('Expected DATABASE_URL to carry no query parameter but sslmode (use the DB_* variables for the rest, and percent-encode a "?" in the password).');
      expect(errorText(error)).not.toContain('Param-Secret-1');
    });

    it('quotes no part of a password whose unencoded "?" makes the rest of it look like a parameter', () => {
      const error = thrown(() => resolveDbConfig({}, { DATABASE_URL: 'postgres://app:5432?Tail-Of-Password@db.local/app' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(errorText(error)).not.toContain('Tail-Of-Password');
    });

    it('quotes no part of a password whose unencoded "?" is followed by "sslmode="', () => {
      const error = thrown(() => resolveDbConfig({}, { DATABASE_URL: 'postgres://app:12?sslmode=xyz-Secret-Tail@db.local/app' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toBe("Expected DATABASE_URL's sslmode to be disable, require, no-verify or verify-full, got another value.");
      expect(errorText(error)).not.toContain('Secret-Tail');
    });

    it('rejects port 0, which pg would silently replace with 5432', () => {
      const error = thrown(() => resolveDbConfig({}, { DATABASE_URL: 'postgres://app:pw@db.local:0/app' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toBe("Expected DATABASE_URL's port to be an integer from 1 to 65535, got 0.");
    });

    it('rejects a URL of another scheme', () => {
      const error = thrown(() => resolveDbConfig({}, { DATABASE_URL: 'mysql://app:My-Secret-1@db.local/app' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(/postgres:\/\//);
      expect(errorText(error)).not.toContain('My-Secret-1');
    });

    it.each([
      ['an unencoded slash', 'postgres://app:Unencoded/Secret-1@db.local:5432/app', 'Unencoded/Secret-1'],
      ['a bad port', 'postgres://app:Bad-Port-Secret-1@db.local:notaport/app', 'Bad-Port-Secret-1'],
      ['an unencoded #', 'postgres://app:Hash#Secret-1@db.local/app', 'Hash#Secret-1'],
      ['an unencoded %', 'postgres://app:50%off-Secret-1@db.local/app', '50%off-Secret-1'],
    ])('rejects a malformed URL with %s without revealing its password', (_, url, password) => {
      const error = thrown(() => resolveDbConfig({}, { DATABASE_URL: url }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(/DATABASE_URL/);
      expect(errorText(error)).not.toContain(password);
      expect(errorText(error)).not.toContain(url);
    });

    it('rejects a URL without a user', () => {
      const error = thrown(() => resolveDbConfig({}, { DATABASE_URL: 'postgres://db.local/app' }));

      expect(error).toBeInstanceOf(ConfigurationError);
      expect(error.message).toMatch(/user/);
    });
  });
});
