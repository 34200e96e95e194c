// Credential sources: a secret (TTL cache, single-flight, stale-while-failing, rotation-aware refresh; read through
// the SDK or the Lambda extension), DATABASE_URL (static) and IAM authentication tokens (iam-credentials.ts).
import type { DbConfig } from './config';
import { callHook, CredentialsRefreshEvent } from './hooks';
import { IamCredentials } from './iam-credentials';
import type { Logger } from './log';
import { SingleFlight } from './single-flight';
import { createExtensionFetcher, createSdkFetcher, SecretFetcher, SecretStage } from './secret-fetchers';
import { DbCredentials, makeCredentials, parseSecret } from './secret-format';

export type { DbCredentials } from './secret-format';

/** Where connections get their user, password and address from. */
export interface CredentialsProvider {
  /** Safe to log: the secret id or "DATABASE_URL". */
  readonly description: string;
  /** The cached credentials while fresh, without waiting; undefined when a fetch is due. */
  peek(): DbCredentials | undefined;
  get(): Promise<DbCredentials>;
  /** Called after the server rejected `rejected` (28P01): fetch again, across a rotation window if need be. */
  refreshAfterRejection(rejected: DbCredentials): Promise<DbCredentials>;
  clear(): void;
  /** True when no refresh can bring another password (DATABASE_URL): a rejected one is then not retried. */
  readonly fixed?: boolean;
}


/** A forced refresh runs at most once per this interval, so a storm of 28P01s makes few calls. */
const MIN_FORCED_REFRESH_MILLIS = 1000;
/** After a failed refresh, the stale secret is served this long before the next try (never past the grace period). */
const RETRY_AFTER_FAILURE_MILLIS = 5000;
/** An AWSPENDING version is only trusted briefly: rotation promotes it to AWSCURRENT within about a minute. */
const PENDING_TTL_MILLIS = 60_000;

interface CacheEntry {
  credentials: DbCredentials;
  fetchedAt: number;
  expiresAt: number;
  /**
   * Until when the entry may be served while refreshes fail: the grace period counted from the (jittered) expiry at
   * which the refresh is due, so it follows this entry's own lifetime (shorter for an AWSPENDING version).
   */
  graceEndsAt: number;
}

/** Reads the secret's AWSCURRENT (or AWSPENDING) version from Secrets Manager and caches it. */
export class SecretsManagerCredentials implements CredentialsProvider {
  readonly description: string;
  private entry?: CacheEntry;
  private readonly flight = new SingleFlight<DbCredentials>();
  private lastForcedAt = -Infinity;
  /** Bumped by clear(): a fetch that started before it does not fill the cache. */
  private generation = 0;

  constructor(
    private readonly config: DbConfig,
    private readonly log: Logger,
    private readonly now: () => number = () => Date.now(),
    private readonly random: () => number = Math.random,
    private readonly fetchSecretString: SecretFetcher = config.secretSource === 'extension' ? createExtensionFetcher(config) : createSdkFetcher(config),
  ) {
    this.description = `secret ${config.secretId}${config.secretSource === 'extension' ? ' (via the Lambda extension)' : ''}`;
  }

  peek(): DbCredentials | undefined {
    const entry = this.entry;
    return entry && this.now() < entry.expiresAt ? entry.credentials : undefined;
  }

  get(): Promise<DbCredentials> {
    const fresh = this.peek();
    if (fresh) return Promise.resolve(fresh);
    return this.flight.run(() => this.refresh(this.entry ? 'expired' : 'initial'));
  }

  refreshAfterRejection(rejected: DbCredentials): Promise<DbCredentials> {
    // A fetch already running (an ordinary one, after the TTL) is joined, but it does not look at AWSPENDING: when it
    // brings the rejected password again, the forced refresh runs after it.
    const pending = this.flight.pending;
    if (pending) return pending.then((credentials) => (credentials.password === rejected.password ? this.forceRefresh(rejected) : credentials));
    return this.forceRefresh(rejected);
  }

  private forceRefresh(rejected: DbCredentials): Promise<DbCredentials> {
    if (this.now() - this.lastForcedAt < MIN_FORCED_REFRESH_MILLIS) return this.get();
    this.lastForcedAt = this.now();
    return this.flight.run(() => this.refresh('rejected', rejected.password));
  }

  clear(): void {
    this.entry = undefined;
    this.flight.clear();
    this.lastForcedAt = -Infinity;
    this.generation++;
  }

  private async refresh(reason: CredentialsRefreshEvent['reason'], rejectedPassword?: string): Promise<DbCredentials> {
    const event = (ok: boolean, stale: boolean) => callHook(this.config.hooks.onCredentialsRefresh, { source: this.description, reason, ok, stale }, this.log.warn);
    const generation = this.generation;
    try {
      let credentials = await this.fetch('AWSCURRENT');
      let ttlMillis = this.config.credentialsTtlMillis;
      if (rejectedPassword !== undefined && credentials.password === rejectedPassword) {
        // Rotation sets the new password in the database before promoting it to AWSCURRENT.
        const pending = await this.fetch('AWSPENDING').catch(() => undefined);
        if (pending && pending.password !== rejectedPassword) {
          credentials = pending;
          ttlMillis = Math.min(ttlMillis, PENDING_TTL_MILLIS);
        } else {
          // No usable AWSPENDING (none, the same password, or the read failed: throttling, a transient error). A
          // different password already cached (an AWSPENDING version read before) is kept. The rejected one is cached
          // only for the retry interval of a failed refresh, so that a connection after it reads again instead of
          // failing for the whole TTL: 5 s rather than 1 s, as a 28P01 forces a refresh once a second anyway and a
          // throttled Secrets Manager is not asked more often than after any other failure.
          const entry = this.entry;
          if (entry && generation === this.generation && entry.credentials.password !== rejectedPassword) {
            event(true, false);
            return entry.credentials;
          }
          ttlMillis = Math.min(ttlMillis, RETRY_AFTER_FAILURE_MILLIS);
        }
      }
      const now = this.now();
      // Up to 10 % shorter, so a fleet of sandboxes does not refresh in step. After clear(), the callers already
      // waiting get what was fetched, but the cache stays empty: the next call fetches again.
      if (generation === this.generation) {
        const expiresAt = now + ttlMillis * (1 - 0.1 * this.random());
        this.entry = { credentials, fetchedAt: now, expiresAt, graceEndsAt: expiresAt + this.config.credentialsGraceMillis };
      }
      event(true, false);
      return credentials;
    } catch (err) {
      const entry = this.entry;
      const now = this.now();
      if (entry && generation === this.generation && now < entry.graceEndsAt) {
        // The next try is due in 5 s, but never later than the end of the grace period.
        entry.expiresAt = Math.min(now + RETRY_AFTER_FAILURE_MILLIS, entry.graceEndsAt);
        // The message names the secret and the SDK's error name (throttling, access denied, a malformed secret), never a value.
        this.log.warn('Refreshing database credentials failed; serving the last good ones.', {
          credentialsSource: this.description, error: err instanceof Error ? err.message : String(err), ageMillis: now - entry.fetchedAt,
        });
        event(false, true);
        return entry.credentials;
      }
      event(false, false);
      throw err;
    }
  }

  private async fetch(stage: SecretStage): Promise<DbCredentials> {
    const label = this.config.secretId as string;
    const credentials = parseSecret(await this.fetchSecretString(stage), label, this.config);
    return stage === 'AWSCURRENT' ? credentials : makeCredentials({ ...credentials, source: `${credentials.source} (AWSPENDING)` }, credentials.password);
  }
}

/** Static credentials from DATABASE_URL, for local development. */
export class UrlCredentials implements CredentialsProvider {
  readonly description = 'DATABASE_URL';
  readonly fixed = true;
  private readonly credentials: DbCredentials;

  constructor(config: DbConfig) {
    const url = config.urlCredentials!;
    this.credentials = makeCredentials(
      { user: url.user, host: config.host ?? url.host, port: config.port ?? url.port, database: config.database ?? url.database, source: 'DATABASE_URL' },
      url.password,
    );
  }

  peek(): DbCredentials {
    return this.credentials;
  }

  get(): Promise<DbCredentials> {
    return Promise.resolve(this.credentials);
  }

  refreshAfterRejection(): Promise<DbCredentials> {
    return this.get();
  }

  clear(): void {}
}

/** Picks the source the configuration names: IAM tokens when DB_AUTH=iam, else a secret id wins over DATABASE_URL. */
export function createCredentialsProvider(config: DbConfig, log: Logger): CredentialsProvider {
  if (config.auth === 'iam') return new IamCredentials(config);
  return config.secretId ? new SecretsManagerCredentials(config, log) : new UrlCredentials(config);
}
