// DbOptions (all optional) → resolveDbConfig(options, env) → a frozen DbConfig. Precedence: option > environment
// variable > default. This is the only file that reads process.env; every bad value throws a ConfigurationError
// naming the variable and what was expected (never echoing a credential).
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigurationError } from './errors';
import type { DbHooks } from './hooks';
import type { DbLogger, LogLevel } from './log';

/** How the connection is encrypted: verify chain and host name, encrypt only, or plain TCP. */
export type SslMode = 'verify-full' | 'require' | 'disable';

/** Where a secret is read: the Secrets Manager API through the SDK, or the AWS Parameters and Secrets Lambda Extension. */
export type SecretSource = 'sdk' | 'extension';

/** How connections authenticate: a password (from a secret or DATABASE_URL) or an IAM authentication token. */
export type AuthMode = 'password' | 'iam';

/** Signs an RDS IAM authentication token; injectable for tests. (Default: @aws-sdk/rds-signer) */
export type IamTokenSigner = (params: { hostname: string; port: number; username: string; region?: string }) => Promise<string>;

/** Everything a caller may set; each field falls back to its environment variable, then to its default. */
export interface DbOptions {
  /** Secrets Manager secret name or ARN. (Env: DB_SECRET_ID, RDS_SECRET_ARN, AWS_SECRET_NAME) */
  readonly secretId?: string;
  /** (Env: DB_SECRET_SOURCE; Default: 'extension' when PARAMETERS_SECRETS_EXTENSION_HTTP_PORT is set, else 'sdk') */
  readonly secretSource?: SecretSource;
  /** Port of the Parameters and Secrets Lambda Extension. (Env: PARAMETERS_SECRETS_EXTENSION_HTTP_PORT; Default: 2773) */
  readonly extensionPort?: number;
  /** (Env: DB_AUTH; Default: 'password') */
  readonly auth?: AuthMode;
  /** Database user for IAM authentication. (Env: DB_USER) */
  readonly user?: string;
  /** Replaces @aws-sdk/rds-signer, e.g. in tests. */
  readonly iamTokenSigner?: IamTokenSigner;
  /** A reader endpoint for read-only work; reads fall back to the writer while it is unreachable. (Env: DB_READER_HOST) */
  readonly readerHost?: string;
  /** (Env: DB_READER_PORT; Default: the writer's port) */
  readonly readerPort?: number;
  /** 'emf' prints one CloudWatch Embedded Metric Format line per operation. (Env: DB_METRICS; Default: 'off') */
  readonly metrics?: 'off' | 'emf';
  /** Close the default pool on SIGTERM (sent by Lambda when an extension is registered). (Default: true inside Lambda) */
  readonly handleSigterm?: boolean;
  /** A postgres:// URL, used when no secret id is set. (Env: DATABASE_URL) */
  readonly databaseUrl?: string;
  /** Override or fill the secret's host, port and database. (Env: DB_HOST, DB_PORT, DB_NAME) */
  readonly host?: string;
  readonly port?: number;
  readonly database?: string;
  /** Credential cache lifetime. (Env: DB_SECRET_TTL_SECONDS; Default: 300 s) */
  readonly credentialsTtlMillis?: number;
  /** How long the last good secret is served while Secrets Manager fails. (Env: DB_SECRET_GRACE_SECONDS; Default: 900 s) */
  readonly credentialsGraceMillis?: number;
  /** (Env: DB_SSL; Default: 'verify-full') */
  readonly ssl?: SslMode;
  /** A PEM file whose certificates replace the default CA set. (Env: DB_SSL_CA_FILE) */
  readonly sslCaFile?: string;
  /** PEM text used as the CA set; wins over sslCaFile. */
  readonly sslCa?: string;
  /** (Env: DB_POOL_MAX; Default: 2) */
  readonly poolMax?: number;
  /** (Env: DB_CONNECT_TIMEOUT_MS; Default: 3000) */
  readonly connectTimeoutMillis?: number;
  /** Server-side statement_timeout. (Env: DB_STATEMENT_TIMEOUT_MS; Default: 15000) */
  readonly statementTimeoutMillis?: number;
  /** Client-side query timeout; the client is destroyed when it fires. (Default: statement timeout + 2000) */
  readonly queryTimeoutMillis?: number;
  /** (Env: DB_IDLE_IN_TRANSACTION_TIMEOUT_MS; Default: 30000; 0 disables it) */
  readonly idleInTransactionTimeoutMillis?: number;
  /** (Default: 1800) */
  readonly maxLifetimeSeconds?: number;
  /** pg-pool's idle eviction timer. (Default: 300000) */
  readonly idleTimeoutMillis?: number;
  /** A client idle longer than this (timers do not run while a sandbox is frozen) is discarded on checkout. (Default: 300000) */
  readonly maxIdleMillis?: number;
  /** A client idle longer than this is checked with SELECT 1 before a non-idempotent statement or BEGIN. (Default: 10000) */
  readonly validateAfterIdleMillis?: number;
  /** Deadline of one operation when no Lambda context is given. (Env: DB_OPERATION_TIMEOUT_MS; Default: 10000) */
  readonly operationTimeoutMillis?: number;
  /** Attempts per operation, the first included. (Env: DB_RETRY_MAX_ATTEMPTS; Default: 5) */
  readonly maxAttempts?: number;
  /** (Default: 50) */
  readonly retryBaseDelayMillis?: number;
  /** (Default: 2000) */
  readonly retryMaxDelayMillis?: number;
  /** Retry tokens per container: a retry costs 1 (2 for timeouts and 53300), a first-try success refunds 0.1. (Default: 10) */
  readonly retryBudget?: number;
  /** Shown in pg_stat_activity. (Env: AWS_LAMBDA_FUNCTION_NAME; Default: 'lambda-pg') */
  readonly applicationName?: string;
  /** An injected client, e.g. for tests; otherwise one is created on first use. */
  readonly secretsManagerClient?: SecretsManagerClient;
  /** Where log lines go. (Default: JSON lines on the console) */
  readonly logger?: DbLogger;
  /** (Env: DB_LOG_LEVEL; Default: 'warn') */
  readonly logLevel?: LogLevel;
  /** Observability hooks; they receive no parameter values. */
  readonly hooks?: DbHooks;
}

/** Credentials parsed from DATABASE_URL. */
export interface UrlCredentials {
  readonly user: string;
  readonly password: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
}

/** The resolved, frozen configuration. */
export interface DbConfig extends Required<Omit<DbOptions, 'secretId' | 'databaseUrl' | 'host' | 'port' | 'database' | 'sslCaFile' | 'sslCa' | 'secretsManagerClient' | 'logger' | 'hooks' | 'user' | 'iamTokenSigner' | 'readerHost' | 'readerPort'>> {
  readonly readerHost?: string;
  readonly readerPort?: number;
  readonly secretId?: string;
  readonly user?: string;
  readonly iamTokenSigner?: IamTokenSigner;
  /** AWS_REGION, for the IAM token signer. */
  readonly region?: string;
  /** Non-enumerable: AWS_SESSION_TOKEN, which the Lambda extension requires as its token. */
  readonly extensionToken?: string;
  /** Non-enumerable: it holds a password. */
  readonly urlCredentials?: UrlCredentials;
  readonly host?: string;
  readonly port?: number;
  readonly database?: string;
  readonly sslCaFile?: string;
  readonly sslCa?: string;
  readonly secretsManagerClient?: SecretsManagerClient;
  readonly logger?: DbLogger;
  readonly hooks: DbHooks;
}

type Env = Record<string, string | undefined>;

const SSL_MODES: readonly SslMode[] = ['verify-full', 'require', 'disable'];
const SECRET_SOURCES: readonly SecretSource[] = ['sdk', 'extension'];
const AUTH_MODES: readonly AuthMode[] = ['password', 'iam'];
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];

function firstEnv(env: Env, names: string[]): [string, string] | undefined {
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return [name, value];
  }
  return undefined;
}

/** Reads an integer from an option or an environment variable, checking its range. */
function integer(option: number | undefined, env: Env, name: string, min: number, max: number, fallback: number, scale = 1, optionName = name): number {
  if (option !== undefined) {
    if (!Number.isInteger(option) || option < min * scale || option > max * scale) {
      throw new ConfigurationError(`Expected option ${optionName} to be an integer from ${min * scale} to ${max * scale}, got ${option}.`);
    }
    return option;
  }
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new ConfigurationError(`Expected ${name} to be an integer from ${min} to ${max}, got "${raw}".`);
  }
  return value * scale;
}

/** Reads one of `allowed` from an option (named `optionName` in errors) or an environment variable. */
function oneOf<T extends string>(option: T | undefined, env: Env, name: string, allowed: readonly T[], fallback: T, optionName: string): T {
  const value = option ?? (env[name]?.trim().toLowerCase() || undefined);
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) {
    const what = option !== undefined ? `option ${optionName}` : name;
    throw new ConfigurationError(`Expected ${what} to be one of ${allowed.join(', ')}, got "${value}".`);
  }
  return value as T;
}

const URL_SSL_MODES: Record<string, SslMode | undefined> = { disable: 'disable', require: 'require', 'verify-full': 'verify-full', 'no-verify': 'require' };

/** Parses DATABASE_URL; its sslmode is folded into the ssl setting so it can never silently replace the TLS options. */
function parseDatabaseUrl(url: string): { credentials: UrlCredentials; sslMode?: SslMode } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigurationError('Expected DATABASE_URL to be a URL like postgres://user:password@host:5432/database; it could not be parsed.');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigurationError(`Expected DATABASE_URL to start with postgres:// or postgresql://, got "${parsed.protocol}//".`);
  }
  // The keys are not quoted: a password with an unencoded "?" would be read as one.
  if ([...parsed.searchParams.keys()].some((key) => key !== 'sslmode')) {
    throw new ConfigurationError('Expected DATABASE_URL to carry no query parameter but sslmode (use the DB_* variables for the rest, and percent-encode a "?" in the password).');
  }
  const rawMode = parsed.searchParams.get('sslmode');
  const sslMode = rawMode === null ? undefined : URL_SSL_MODES[rawMode];
  if (rawMode !== null && !sslMode) {
    // Quoted only when it looks like a mode: after a password's unencoded "?" the value holds the rest of the password.
    const shown = /^[a-z-]{1,16}$/.test(rawMode) ? `"${rawMode}"` : 'another value';
    throw new ConfigurationError(`Expected DATABASE_URL's sslmode to be disable, require, no-verify or verify-full, got ${shown}.`);
  }
  const port = parsed.port ? Number(parsed.port) : 5432;
  if (port < 1) throw new ConfigurationError(`Expected DATABASE_URL's port to be an integer from 1 to 65535, got ${parsed.port}.`);
  let credentials: UrlCredentials;
  try {
    credentials = {
      user: decodeURIComponent(parsed.username),
      password: decodeURIComponent(parsed.password),
      host: decodeURIComponent(parsed.hostname).replace(/^\[(.*)\]$/, '$1'),
      port,
      database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || 'postgres',
    };
  } catch {
    throw new ConfigurationError("Expected DATABASE_URL's user, password and database to be percent-encoded (a % must be written %25).");
  }
  if (!credentials.user || !credentials.host) {
    throw new ConfigurationError('Expected DATABASE_URL to name a user and a host.');
  }
  return { credentials, sslMode };
}

/** Resolves options, then environment variables, then defaults into a frozen DbConfig. */
export function resolveDbConfig(options: DbOptions = {}, env: Env = process.env): DbConfig {
  // Option > environment: a databaseUrl option is not overridden by a secret id from the environment.
  const secret = options.secretId ? ['secretId', options.secretId] : options.databaseUrl ? undefined : firstEnv(env, ['DB_SECRET_ID', 'RDS_SECRET_ARN', 'AWS_SECRET_NAME']);
  const databaseUrl = options.databaseUrl ?? (env.DATABASE_URL?.trim() || undefined);
  const auth = oneOf(options.auth, env, 'DB_AUTH', AUTH_MODES, 'password', 'auth');
  const fromUrl = !secret && databaseUrl ? parseDatabaseUrl(databaseUrl) : undefined;
  const host = options.host ?? (env.DB_HOST?.trim() || undefined);
  const user = options.user ?? (env.DB_USER?.trim() || undefined);
  if (auth === 'iam') {
    if (!(host ?? fromUrl?.credentials.host) || !(user ?? fromUrl?.credentials.user)) {
      throw new ConfigurationError(secret && databaseUrl
        ? `DB_AUTH=iam needs DB_HOST and DB_USER to sign a token for (DATABASE_URL is not read while ${secret[0] === 'secretId' ? 'the secretId option' : secret[0]} is set).`
        : 'DB_AUTH=iam needs DB_HOST and DB_USER (or a DATABASE_URL without a password) to sign a token for.');
    }
  } else if (!secret && !databaseUrl) {
    throw new ConfigurationError('No database credentials are configured: set DB_SECRET_ID (a Secrets Manager secret name or ARN) or DATABASE_URL.');
  }

  const ssl = oneOf(options.ssl, env, 'DB_SSL', SSL_MODES, fromUrl?.sslMode ?? 'verify-full', 'ssl');
  if (fromUrl?.sslMode && ssl !== fromUrl.sslMode) {
    throw new ConfigurationError(`DATABASE_URL's sslmode and DB_SSL disagree (${fromUrl.sslMode} vs ${ssl}); set only one.`);
  }
  if (auth === 'iam' && ssl === 'disable') {
    throw new ConfigurationError('DB_AUTH=iam requires TLS: RDS refuses IAM tokens over plain TCP, so DB_SSL=disable cannot be used with it.');
  }
  const extensionPortSet = !!env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT?.trim();
  const statementTimeoutMillis = integer(options.statementTimeoutMillis, env, 'DB_STATEMENT_TIMEOUT_MS', 0, 3_600_000, 15_000, 1, 'statementTimeoutMillis');
  const maxLifetimeSeconds = integer(options.maxLifetimeSeconds, {}, 'maxLifetimeSeconds', 0, 86_400, 1800);

  const secretSource = oneOf(options.secretSource, env, 'DB_SECRET_SOURCE', SECRET_SOURCES, extensionPortSet ? 'extension' : 'sdk', 'secretSource');

  const config = {
    secretId: secret?.[1],
    secretSource,
    // Read only where the extension is used: a stray value must not fail a DATABASE_URL or SDK setup.
    extensionPort: secret && secretSource === 'extension' ? integer(options.extensionPort, env, 'PARAMETERS_SECRETS_EXTENSION_HTTP_PORT', 1, 65_535, 2773, 1, 'extensionPort') : 2773,
    auth,
    user,
    iamTokenSigner: options.iamTokenSigner,
    region: env.AWS_REGION?.trim() || env.AWS_DEFAULT_REGION?.trim() || undefined,
    host,
    readerHost: options.readerHost ?? (env.DB_READER_HOST?.trim() || undefined),
    readerPort: options.readerPort !== undefined || env.DB_READER_PORT?.trim() ? integer(options.readerPort, env, 'DB_READER_PORT', 1, 65_535, 5432, 1, 'readerPort') : undefined,
    metrics: oneOf(options.metrics, env, 'DB_METRICS', ['off', 'emf'] as const, 'off', 'metrics'),
    handleSigterm: options.handleSigterm ?? !!env.AWS_LAMBDA_FUNCTION_NAME,
    port: options.port !== undefined || env.DB_PORT?.trim() ? integer(options.port, env, 'DB_PORT', 1, 65_535, 5432, 1, 'port') : undefined,
    database: options.database ?? (env.DB_NAME?.trim() || undefined),
    credentialsTtlMillis: integer(options.credentialsTtlMillis, env, 'DB_SECRET_TTL_SECONDS', 1, 86_400, 300_000, 1000, 'credentialsTtlMillis'),
    credentialsGraceMillis: integer(options.credentialsGraceMillis, env, 'DB_SECRET_GRACE_SECONDS', 0, 86_400, 900_000, 1000, 'credentialsGraceMillis'),
    ssl,
    sslCaFile: options.sslCaFile ?? (env.DB_SSL_CA_FILE?.trim() || undefined),
    sslCa: pemOption(options.sslCa),
    poolMax: integer(options.poolMax, env, 'DB_POOL_MAX', 1, 1000, 2, 1, 'poolMax'),
    connectTimeoutMillis: integer(options.connectTimeoutMillis, env, 'DB_CONNECT_TIMEOUT_MS', 1, 600_000, 3000, 1, 'connectTimeoutMillis'),
    statementTimeoutMillis,
    queryTimeoutMillis: integer(options.queryTimeoutMillis, {}, 'queryTimeoutMillis', 0, 3_600_000, statementTimeoutMillis ? statementTimeoutMillis + 2000 : 0),
    idleInTransactionTimeoutMillis: integer(options.idleInTransactionTimeoutMillis, env, 'DB_IDLE_IN_TRANSACTION_TIMEOUT_MS', 0, 3_600_000, 30_000, 1, 'idleInTransactionTimeoutMillis'),
    maxLifetimeSeconds,
    idleTimeoutMillis: integer(options.idleTimeoutMillis, {}, 'idleTimeoutMillis', 0, 86_400_000, 300_000),
    maxIdleMillis: integer(options.maxIdleMillis, {}, 'maxIdleMillis', 0, 86_400_000, 300_000),
    validateAfterIdleMillis: integer(options.validateAfterIdleMillis, {}, 'validateAfterIdleMillis', 0, 86_400_000, 10_000),
    operationTimeoutMillis: integer(options.operationTimeoutMillis, env, 'DB_OPERATION_TIMEOUT_MS', 1, 900_000, 10_000, 1, 'operationTimeoutMillis'),
    maxAttempts: integer(options.maxAttempts, env, 'DB_RETRY_MAX_ATTEMPTS', 1, 20, 5, 1, 'maxAttempts'),
    retryBaseDelayMillis: integer(options.retryBaseDelayMillis, {}, 'retryBaseDelayMillis', 0, 60_000, 50),
    retryMaxDelayMillis: integer(options.retryMaxDelayMillis, {}, 'retryMaxDelayMillis', 0, 60_000, 2000),
    retryBudget: integer(options.retryBudget, {}, 'retryBudget', 0, 10_000, 10),
    applicationName: options.applicationName ?? (env.AWS_LAMBDA_FUNCTION_NAME?.trim() || 'lambda-pg'),
    secretsManagerClient: options.secretsManagerClient,
    logger: options.logger,
    logLevel: oneOf(options.logLevel, env, 'DB_LOG_LEVEL', LOG_LEVELS, 'warn', 'logLevel'),
    hooks: options.hooks ?? {},
  };
  if (fromUrl) Object.defineProperty(config, 'urlCredentials', { value: Object.freeze(fromUrl.credentials), enumerable: false });
  Object.defineProperty(config, 'extensionToken', { value: env.AWS_SESSION_TOKEN, enumerable: false });
  return Object.freeze(config) as DbConfig;
}

/** The sslCa option as given, if it holds PEM certificates: an empty or other text would trust nothing, or Node's roots. */
function pemOption(pem: string | undefined): string | undefined {
  if (pem !== undefined && (typeof pem !== 'string' || !pem.includes('-----BEGIN CERTIFICATE-----'))) {
    throw new ConfigurationError('Expected the sslCa option to hold one or more PEM certificates ("BEGIN CERTIFICATE" blocks).');
  }
  return pem;
}
