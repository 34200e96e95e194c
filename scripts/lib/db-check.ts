// The checks behind `npm run db:check`, in order: configuration, credentials, connection, TLS, certificate, the
// reader endpoint (when one is configured), latency, pool settings and a transaction, each PASS, FAIL or SKIP with its figure. A failure is explained in one line with
// its likely fix, from the db module's error classes; a password never appears (the module's messages hold none).
import {
  AuthenticationError, ConfigurationError, ConnectionError, CredentialsError, DbError, DeadlineExceededError,
  PoolExhaustedError, QueryError, TlsError, TooManyConnectionsError, type Database, type HealthReport,
} from '../../backend/src/shared/db';

/** The outcome of one check. */
export interface CheckResult {
  readonly name: string;
  readonly status: 'PASS' | 'FAIL' | 'SKIP';
  /** The figure on PASS; on FAIL the one-line explanation and fix. */
  readonly detail: string;
}

/** Options for {@link runDbCheck}. */
export interface DbCheckOptions {
  /** Round trips measured for the latency figures. (Default: 50) */
  readonly count?: number;
  /** Called as each check finishes, for printing progress. (Default: none) */
  readonly onResult?: (result: CheckResult) => void;
}

interface Check {
  readonly name: string;
  /** Later checks cannot run without this one. */
  readonly fatal: boolean;
  run(): Promise<string>;
}

/** Runs every check against the database `create` configures (from options and the environment), then closes it. */
export async function runDbCheck(create: () => Database, options: DbCheckOptions = {}): Promise<CheckResult[]> {
  const count = options.count ?? 50;
  let db: Database | undefined;
  let health: HealthReport | undefined;
  const database = (): Database => db as Database;
  const read = { readOnly: true, idempotent: true } as const;
  const caSet = (): string => (database().config.sslCaFile ? `the CA file ${database().config.sslCaFile}` : 'the default CA set (the RDS bundle for RDS endpoints, else Node roots)');
  const checks: Check[] = [
    { name: 'config', fatal: true, run: async () => {
      db = create();
      return `credentials from ${db.credentialsSource}; DB_SSL=${db.config.ssl}${db.config.ssl === 'verify-full' ? `, ${caSet()}` : ''}`;
    } },
    { name: 'credentials', fatal: true, run: async () => {
      const { user, host, port, database: name } = (await database().getPool()).options;
      return `${database().credentialsSource}: user ${user} at ${host}:${port}/${name} (password not shown)`;
    } },
    { name: 'connect', fatal: true, run: timed(async () => {
      health = await database().healthCheck();
      return `PostgreSQL ${health.serverVersion} as ${health.user}`;
    }) },
    { name: 'tls', fatal: false, run: async () => {
      if (!health?.tlsVersion) throw new Error(`The connection is not encrypted (DB_SSL=${database().config.ssl}) → set DB_SSL=verify-full; credentials and data now cross the network in clear text.`);
      return `${health.tlsVersion}, ${health.tlsCipher}`;
    } },
    { name: 'certificate', fatal: false, run: async () => {
      const { ssl } = database().config;
      if (!health?.certificateVerified) throw new Error(`Not verified (DB_SSL=${ssl}): the server is not authenticated → set DB_SSL=verify-full (and DB_SSL_CA_FILE for a private CA).`);
      return `verified (DB_SSL=verify-full): chain and host name against ${caSet()}`;
    } },
    { name: 'reader', fatal: false, run: async () => {
      const { readerHost, readerPort, port } = database().config;
      if (!readerHost) return 'none configured (DB_READER_HOST)';
      const reader = health?.reader;
      const where = `${readerHost}:${readerPort ?? port ?? 5432}`;
      if (!reader?.ok) throw new Error(`The reader endpoint ${where} did not answer (${reader?.error ?? 'not probed'}) → check DB_READER_HOST/DB_READER_PORT and its security group; reads fall back to the writer meanwhile.`);
      return `${where}: SELECT 1 in ${reader.latencyMillis} ms`;
    } },
    { name: 'latency', fatal: false, run: async () => {
      const millis: number[] = [];
      for (let i = 0; i < count; i++) {
        const startedAt = process.hrtime.bigint();
        await database().query('SELECT 1', [], read);
        millis.push(Number(process.hrtime.bigint() - startedAt) / 1e6);
      }
      const [p50, p99] = [percentile(millis, 50), percentile(millis, 99)].map((value) => value.toFixed(2));
      return `p50 ${p50} ms, p99 ${p99} ms over ${count} round trips (SELECT 1)`;
    } },
    { name: 'pool', fatal: false, run: async () => {
      const c = database().config;
      const { total, idle } = database().poolCounts();
      return `max ${c.poolMax} (DB_POOL_MAX), connect timeout ${c.connectTimeoutMillis} ms, statement timeout ${c.statementTimeoutMillis} ms, ` +
        `operation deadline ${c.operationTimeoutMillis} ms, idle timeout ${c.idleTimeoutMillis} ms, max lifetime ${c.maxLifetimeSeconds} s; ${total} open, ${idle} idle`;
    } },
    { name: 'transaction', fatal: false, run: timed(async () => {
      const txid = await database().withTransaction(async (client) => (await client.query<{ txid: string }>('SELECT txid_current()::text AS txid')).rows[0].txid);
      return `BEGIN, SELECT txid_current(), COMMIT (txid ${txid})`;
    }) },
  ];

  const results: CheckResult[] = [];
  const record = (result: CheckResult): void => {
    results.push(result);
    options.onResult?.(result);
  };
  let blockedBy: string | undefined;
  try {
    for (const check of checks) {
      if (blockedBy) {
        record({ name: check.name, status: 'SKIP', detail: `needs ${blockedBy}` });
        continue;
      }
      try {
        record({ name: check.name, status: 'PASS', detail: await check.run() });
      } catch (error) {
        record({ name: check.name, status: 'FAIL', detail: explainFailure(error) });
        if (check.fatal) blockedBy = check.name;
      }
    }
  } finally {
    await db?.close().catch(() => undefined);
  }
  return results;
}

/** One line: what failed (the error's class and message) and the likely fix, e.g. for a TlsError the CA file. */
export function explainFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (error instanceof DeadlineExceededError) {
    const last = error.cause instanceof DbError ? ` Last error: ${explainFailure(error.cause)}` : ` → ${fixFor(error)}`;
    return oneLine(`${error.name}: ${error.message}${last}`);
  }
  const fix = fixFor(error);
  return oneLine(`${error instanceof DbError ? `${error.name}: ` : ''}${error.message}${fix ? ` → ${fix}` : ''}`);
}

function fixFor(error: Error): string | undefined {
  if (error instanceof ConfigurationError) return 'correct that setting; every variable is listed in docs/configuration.md';
  if (error instanceof CredentialsError) return 'check DB_SECRET_ID and AWS_REGION, the role\'s secretsmanager:GetSecretValue (and kms:Decrypt) permission and a route to Secrets Manager (VPC endpoint or NAT); see docs/secrets-and-iam.md';
  if (error instanceof TlsError) return 'point DB_SSL_CA_FILE at the CA that signed the server certificate (for RDS the default CA set needs none), connect to a host name the certificate names, and keep DB_SSL=verify-full; see docs/tls.md';
  if (error instanceof AuthenticationError) return 'the secret\'s password is not the role\'s: a rotation may be half done (compare the AWSCURRENT and AWSPENDING versions) or the secret names another user';
  if (error instanceof TooManyConnectionsError) return 'the server is at max_connections: lower DB_POOL_MAX or the function\'s concurrency, or connect through RDS Proxy';
  if (error instanceof PoolExhaustedError) return undefined; // its message already says what to do
  if (error instanceof ConnectionError) return 'check the host and port (the secret\'s, or DB_HOST/DB_PORT) and that the database\'s security group allows TCP 5432 from here (Lambda SG → DB SG)';
  if (error instanceof DeadlineExceededError) return 'nothing answered within the deadline (DB_OPERATION_TIMEOUT_MS): usually a security group or network ACL dropping packets, or no route to the database or to Secrets Manager';
  if (error instanceof QueryError) return `the server refused the statement${error.sqlState ? ` (SQLSTATE ${error.sqlState})` : ''}: check the role's privileges`;
  return undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Nearest-rank percentile of `values` (unsorted). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Wraps a check so its figure ends with how long it took. */
function timed(run: () => Promise<string>): () => Promise<string> {
  return async () => {
    const startedAt = Date.now();
    const figure = await run();
    return `${figure} in ${Date.now() - startedAt} ms`;
  };
}
