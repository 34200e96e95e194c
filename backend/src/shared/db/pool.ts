// Pool lifecycle and client hygiene: one pg Pool per credential identity (user, host, port, database), a password
// function so rotation never rebuilds it, an 'error' listener on every checked-out client, stale-idle detection that
// does not trust timers (they stop while a Lambda sandbox is frozen), and release rules that destroy doubtful clients.
import { Pool, PoolClient } from 'pg';
import { classifyConnectFailure, POOL_EXHAUSTED } from './classify';
import type { DbConfig } from './config';
import type { CredentialsProvider, DbCredentials } from './credentials';
import { AuthenticationError, ConnectionError, DeadlineExceededError, PoolExhaustedError } from './errors';
import type { Logger } from './log';
import { AttemptFailed } from './retry';
import { timedQuery } from './timed-query';
import { isRdsProxyHost, resolveSsl } from './tls';


/** Per-client bookkeeping, kept off the client object itself. */
interface ClientState {
  lastUsedAt: number;
  lostError?: Error;
  onError: (err: Error) => void;
}

const VALIDATE_TIMEOUT_MILLIS = 1000;
const RETIRE_POLL_MILLIS = 50;


/** `promise`, or a DeadlineExceededError naming what was awaited once the deadline passes, whichever comes first. */
async function withinDeadline<T>(promise: Promise<T>, deadline: number, phase: 'credentials' | 'connect'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const what = phase === 'connect' ? 'connecting' : 'fetching database credentials';
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceededError(`The deadline passed while ${what}.`, { phase })), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Ends `pool` once no caller is queued on it: pg-pool stops serving its queue when it ends, so callers waiting for
 * one of its clients would otherwise wait out their connect timeout and fail as if the pool were exhausted.
 */
function endWhenDrained(pool: Pool): Promise<void> {
  // One ending per pool, so that every caller (a retirement, a first and a second close()) waits for the same end.
  let ending = endings.get(pool);
  if (!ending) {
    ending = drainAndEnd(pool);
    endings.set(pool, ending);
  }
  return ending;
}

const endings = new WeakMap<Pool, Promise<void>>();

async function drainAndEnd(pool: Pool): Promise<void> {
  while (pool.waitingCount > 0 && !pool.ending) await new Promise((resolve) => setTimeout(resolve, RETIRE_POLL_MILLIS).unref());
  if (!pool.ending) await pool.end().catch(() => undefined);
}

function identityOf(c: DbCredentials): string {
  return `${c.user}@${c.host}:${c.port}/${c.database}`;
}

/** Owns the pg Pool(s) of one database instance and hands out clients that are safe to use. */
export class PoolManager {
  private current?: { pool: Pool; identity: string; credentials: DbCredentials };
  private readonly states = new WeakMap<PoolClient, ClientState>();
  /** When each client connected, for the idle checks of one that was never checked out through here. */
  private readonly connectedAt = new WeakMap<PoolClient, number>();
  /** Replaced pools still serving callers queued on them. */
  private readonly retiring = new Set<Pool>();
  private closed = false;
  private ending?: Promise<void>;

  constructor(
    private readonly config: DbConfig,
    private readonly credentials: CredentialsProvider,
    private readonly log: Logger,
  ) {}

  /** The pool for the current credentials, created on first use. */
  async getPool(): Promise<Pool> {
    return this.poolFor(this.credentials.peek() ?? (await this.credentials.get()));
  }

  /** Counts for health checks and logs. */
  counts(): { total: number; idle: number; waiting: number } {
    const pool = this.current?.pool;
    return { total: pool?.totalCount ?? 0, idle: pool?.idleCount ?? 0, waiting: pool?.waitingCount ?? 0 };
  }

  private poolFor(credentials: DbCredentials): Pool {
    if (this.closed) throw closedInstanceError();
    // The cached credentials object is the same on almost every call: compare it before building the identity.
    if (this.current?.credentials === credentials) return this.current.pool;
    const identity = identityOf(credentials);
    if (this.current?.identity === identity) {
      this.current.credentials = credentials;
      return this.current.pool;
    }
    const previous = this.current?.pool;
    const pool = this.createPool(credentials);
    this.current = { pool, identity, credentials };
    if (previous) {
      // The user or address changed (alternating-user rotation, a moved host): drain the old pool in the background.
      this.log.info('Database credentials now name another user or address; replacing the pool.', { credentialsSource: credentials.source });
      this.retire(previous);
    }
    return pool;
  }

  /** Ends a replaced pool in the background, once the callers queued on it have been served. */
  private retire(pool: Pool): void {
    this.retiring.add(pool);
    void endWhenDrained(pool).finally(() => this.retiring.delete(pool));
  }

  private createPool(credentials: DbCredentials): Pool {
    const c = this.config;
    const ssl = resolveSsl(c, this.log, credentials.host);
    // RDS Proxy refuses startup parameters other than a few (e.g. "unsupported startup parameter: statement_timeout"),
    // and a SET would pin the session; behind it these timeouts belong on the role (ALTER ROLE … SET).
    const behindProxy = isRdsProxyHost(credentials.host);
    if (behindProxy && (c.statementTimeoutMillis || c.idleInTransactionTimeoutMillis)) {
      this.log.info('RDS Proxy endpoint: statement_timeout and idle_in_transaction_session_timeout are not sent; set them on the role.', { host: credentials.host });
    }
    const pool = new Pool({
      host: credentials.host,
      port: credentials.port,
      database: credentials.database,
      user: credentials.user,
      // Called for every new connection, so a rotated password is picked up without rebuilding the pool.
      password: this.passwordFor(credentials),
      ssl,
      max: c.poolMax,
      connectionTimeoutMillis: c.connectTimeoutMillis,
      idleTimeoutMillis: c.idleTimeoutMillis,
      maxLifetimeSeconds: c.maxLifetimeSeconds,
      keepAlive: true,
      allowExitOnIdle: true,
      application_name: c.applicationName,
      statement_timeout: behindProxy ? undefined : startupMillis(c.statementTimeoutMillis),
      idle_in_transaction_session_timeout: behindProxy ? undefined : startupMillis(c.idleInTransactionTimeoutMillis),
    });
    pool.on('connect', (client) => void this.connectedAt.set(client, Date.now()));
    pool.on('error', (err) => this.log.warn('An idle database connection failed and was removed.', { error: (err as { code?: string }).code ?? err.name }));
    return pool;
  }

  /**
   * The password function of the pool made for `credentials`: the current password while the cached credentials
   * name this pool's user and address; once they name another (the pool was replaced and drains its queue), the
   * newest password this pool saw for its own user, never another user's.
   */
  private passwordFor(credentials: DbCredentials): () => Promise<string> {
    const identity = identityOf(credentials);
    let known = credentials;
    return async () => {
      const latest = this.credentials.peek() ?? (await this.credentials.get());
      if (latest !== known && identityOf(latest) === identity) known = latest;
      return known.password;
    };
  }

  /**
   * Checks out one client within the deadline (the connect phase: nothing of the caller's was sent). Rejects with
   * AttemptFailed carrying a connect-phase classification; on 28P01 the credentials are refreshed first.
   */
  acquire(deadline: number, validate: boolean, round = 0): Promise<PoolClient> {
    return new Promise((resolve, reject) => this.acquireThen(deadline, validate, (err, client) => (client ? resolve(client) : reject(err)), round));
  }

  /**
   * acquire() with a callback, for query()'s hot path: with cached credentials and the connect timeout inside the
   * deadline (the usual case), pg-pool's callback API and the checks run without a promise per step. `done` gets
   * the client or the failure, once.
   */
  acquireThen(deadline: number, validate: boolean, done: (err: unknown, client?: PoolClient) => void, round = 0): void {
    try {
      const cached = this.credentials.peek();
      const remaining = deadline - Date.now();
      if (cached && remaining > 0 && remaining >= this.config.connectTimeoutMillis) {
        this.checkOut(cached, deadline, validate, round, done, true);
        return;
      }
      const credentials = cached ? Promise.resolve(cached) : this.loadCredentials(deadline);
      credentials.then((loaded) => this.checkOut(loaded, deadline, validate, round, done, false)).catch(done);
    } catch (err) {
      done(err);
    }
  }

  /**
   * Checks a client out of the pool for `credentials` and vets it. `direct`: through pg-pool's callback API (the
   * connect timeout fits in the deadline); otherwise through connect(), which clamps the wait to the deadline.
   */
  private checkOut(credentials: DbCredentials, deadline: number, validate: boolean, round: number, done: (err: unknown, client?: PoolClient) => void, direct: boolean): void {
    const pool = this.poolFor(credentials);
    const wasFull = pool.totalCount >= this.config.poolMax && pool.idleCount === 0;
    const onConnect = (err: unknown, client?: PoolClient) => {
      if (!client) {
        this.connectFailed(err, pool, credentials, deadline, wasFull).catch(done);
        return;
      }
      try {
        const vetted = this.vet(client, deadline, validate, round);
        if (vetted instanceof Promise) vetted.then((fit) => done(undefined, fit), done);
        else done(undefined, vetted);
      } catch (thrown) {
        done(thrown);
      }
    };
    if (!direct) {
      this.connect(pool, deadline).then((client) => onConnect(undefined, client), onConnect);
      return;
    }
    // pg-pool calls back once, on a later tick (at once if the pool is ending); a throw while it creates a client
    // is classified as a connect failure, as one it reports.
    try {
      pool.connect(onConnect as Parameters<Pool['connect']>[0]);
    } catch (err) {
      onConnect(err);
    }
  }

  /** The checked-out client if it is fit to use; else it is discarded and the next round checks out another. */
  private vet(client: PoolClient, deadline: number, validate: boolean, round: number): PoolClient | Promise<PoolClient> {
    const state = this.states.get(client);
    // A client never checked out through here (used through getPool(), or parked idle by pg-pool for a caller that
    // had given up) counts as idle since it connected.
    const since = state ? state.lastUsedAt : this.connectedAt.get(client);
    const idleMillis = since === undefined ? 0 : Date.now() - since;
    if (idleMillis > this.config.maxIdleMillis) {
      client.release(new Error('idle beyond maxIdleMillis'));
      return this.nextRound(deadline, validate, round);
    }
    // Tracked before validation: a socket that died while frozen can emit 'error' during the SELECT 1.
    this.track(client);
    if (!validate || idleMillis <= this.config.validateAfterIdleMillis) return client;
    return this.isAlive(client, deadline).then((alive) => {
      if (alive) return client;
      client.release(new Error('failed validation'));
      return this.nextRound(deadline, validate, round);
    });
  }

  private nextRound(deadline: number, validate: boolean, round: number): Promise<PoolClient> {
    // A pool of n clients holds at most n stale ones, so n + 1 rounds always reach a fresh or new client.
    if (round >= this.config.poolMax) {
      return Promise.reject(new AttemptFailed(classifyConnectFailure(new ConnectionError('Every pooled connection was stale and no new one could be checked out.', { retryable: true }))));
    }
    return this.acquire(deadline, validate, round + 1);
  }

  /** Waits for credentials no longer than the deadline; the shared fetch itself goes on for the next caller. */
  private async loadCredentials(deadline: number): Promise<DbCredentials> {
    try {
      return await withinDeadline(this.credentials.get(), deadline, 'credentials');
    } catch (err) {
      throw new AttemptFailed(classifyConnectFailure(err));
    }
  }

  /** pool.connect(), or its failure, within the deadline; connectFailed() classifies a failure. */
  private connect(pool: Pool, deadline: number): Promise<PoolClient> {
    const remaining = deadline - Date.now();
    try {
      if (remaining <= 0) return Promise.reject(new DeadlineExceededError('The deadline passed before a connection could be checked out.', { phase: 'connect' }));
      return remaining >= this.config.connectTimeoutMillis ? pool.connect() : this.connectWithin(pool, deadline);
    } catch (err) {
      // pg-pool creates and starts a new client synchronously: a throw there is classified like any connect failure.
      return Promise.reject(err);
    }
  }

  private async connectFailed(err: unknown, pool: Pool, credentials: DbCredentials, deadline: number, wasFull: boolean): Promise<never> {
    if (err instanceof AttemptFailed) throw err;
    const queueTimedOut = POOL_EXHAUSTED.test((err as Error)?.message);
    if (queueTimedOut && !holdsConnection(pool)) {
      // Queued behind connections that were themselves still connecting (a slow or black-holed host): a connect
      // timeout, safe to retry and a reason for a reader to fall back, not a saturated pool.
      const timedOut = new ConnectionError('Connecting to the database timed out (every pooled connection was still connecting).', { cause: err, phase: 'connect', retryable: true });
      throw new AttemptFailed({ ...classifyConnectFailure(timedOut), cost: 2 });
    }
    // Waiting for a full pool past the deadline is saturation only when the pool holds connected clients; otherwise
    // the DeadlineExceededError of the connect phase goes on as it is.
    if (queueTimedOut || (wasFull && err instanceof DeadlineExceededError && holdsConnection(pool))) {
      const counts = this.counts();
      throw new AttemptFailed(classifyConnectFailure(new PoolExhaustedError(`No pooled connection became free in time (max ${this.config.poolMax}, ${counts.waiting} waiting): raise DB_POOL_MAX or release clients.`, { cause: err })));
    }
    const failure = classifyConnectFailure(err, this.config.auth === 'iam');
    if (failure.refreshCredentials && this.credentials.fixed) {
      // Nothing to refresh: the same password would be rejected again on every retry.
      const rejected = new AuthenticationError(`The database rejected the password from ${this.credentials.description} (SQLSTATE 28P01).`, { cause: err, phase: 'connect', sqlState: '28P01' });
      throw new AttemptFailed(classifyConnectFailure(rejected));
    }
    // Bounded too: the refresh may read two secret versions; the next attempt, if any, waits for the shared fetch.
    if (failure.refreshCredentials) await withinDeadline(this.credentials.refreshAfterRejection(credentials), deadline, 'credentials').catch(() => undefined);
    throw new AttemptFailed(failure);
  }

  /** pool.connect() clamped to a deadline shorter than the configured connect timeout. */
  private async connectWithin(pool: Pool, deadline: number): Promise<PoolClient> {
    const connecting = pool.connect();
    try {
      return await withinDeadline(connecting, deadline, 'connect');
    } catch (err) {
      // A connection that arrives after the deadline goes back to the pool, tracked so that its idle time counts.
      if (err instanceof DeadlineExceededError) connecting.then((client) => this.track(client).release(), () => undefined);
      throw err;
    }
  }

  private async isAlive(client: PoolClient, deadline: number): Promise<boolean> {
    const timeout = Math.max(1, Math.min(VALIDATE_TIMEOUT_MILLIS, deadline - Date.now()));
    try {
      await timedQuery(client, 'SELECT 1', undefined, timeout);
      return true;
    } catch {
      return false;
    }
  }

  /** Attaches the error listener and wraps this checkout's release() with the hygiene rules. */
  private track(client: PoolClient): PoolClient {
    let state = this.states.get(client);
    if (!state) {
      const fresh: ClientState = { lastUsedAt: Date.now(), onError: (err) => { fresh.lostError ??= err; } };
      state = fresh;
      this.states.set(client, state);
      // Attached once for the client's life: while idle, pg-pool's own listener removes a failed client anyway.
      client.on('error', fresh.onError);
    }
    const tracked = state;
    tracked.lostError = undefined;
    // A wrapper per checkout, bound to this checkout's release(): a release() kept from an earlier checkout and
    // called again fails like pg-pool's double-release check instead of releasing the next holder's client.
    const poolRelease = client.release;
    let released = false;
    client.release = (err?: Error | boolean) => {
      if (released) throw new Error('Release called on client which has already been released to the pool.');
      released = true;
      tracked.lastUsedAt = Date.now();
      // A client inside a transaction, or one whose socket failed or whose statement timed out, must never be handed
      // to the next caller.
      const status = (client as { getTransactionStatus?: () => string | null }).getTransactionStatus?.();
      const destroy =
        err instanceof Error ? err
        : err ? new Error('released with an error')
        : tracked.lostError ?? (status && status !== 'I' ? new Error('released inside a transaction') : undefined);
      if (destroy || !busy(client)) return poolRelease.call(client, destroy);
      // Handed back with a statement still running or queued that its holder did not wait for: the client goes back
      // once pg has finished them, so that each still settles with its own outcome (closing the connection would
      // fail a write that may commit) and the next holder does not wait behind them.
      const finish = (ended?: Error) => {
        client.off('drain', onDrain);
        client.off('end', onEnd);
        tracked.lastUsedAt = Date.now();
        poolRelease.call(client, ended ?? tracked.lostError);
      };
      const onDrain = () => finish();
      const onEnd = () => finish(new Error('connection ended'));
      client.on('drain', onDrain);
      client.on('end', onEnd);
    };
    return client;
  }

  /** Marks a checked-out client as unfit to reuse (a statement on it timed out, say): its release destroys it. */
  markLost(client: PoolClient, err: Error): void {
    const state = this.states.get(client);
    if (state) state.lostError ??= err;
  }

  /** The error that killed the client's connection while it was checked out, if any. */
  lostError(client: PoolClient): Error | undefined {
    return this.states.get(client)?.lostError;
  }

  /**
   * Ends every pool; safe to call twice and while queries run: those running and those already queued finish
   * first, and calls made afterwards are refused (a closed instance opens no new pool).
   */
  end(): Promise<void> {
    this.closed = true;
    const pools = [this.current?.pool, ...this.retiring].filter((pool): pool is Pool => pool !== undefined);
    this.current = undefined;
    this.retiring.clear();
    // A second call resolves when the pools of the first have ended too, not at once.
    const ended = Promise.all(pools.map(endWhenDrained)).then(() => undefined);
    this.ending = this.ending ? Promise.all([this.ending, ended]).then(() => undefined) : ended;
    return this.ending;
  }
}

/**
 * Whether pg still has a statement of this client's running or waiting (pg 8 keeps them in these fields). After an
 * error pg raises before sending, the statement is still pg's active one while its callback runs: one of ours that
 * pg has answered does not count.
 */
function busy(client: PoolClient): boolean {
  const internals = client as unknown as { _activeQuery?: { answered?: boolean } | null; _queryQueue?: unknown[] };
  const active = internals._activeQuery;
  return (!!active && active.answered !== true) || (internals._queryQueue?.length ?? 0) > 0;
}

/** What a closed instance answers a call with. */
export function closedInstanceError(): ConnectionError {
  return new ConnectionError('This database instance was closed; it opens no new connections (create another, or call the db.ts functions again after closePool()).');
}

/** Whether any client of the pool is connected (pg sets `_connected` once the startup completed). */
function holdsConnection(pool: Pool): boolean {
  const clients = (pool as unknown as { _clients?: Array<{ _connected?: boolean }> })._clients;
  return !Array.isArray(clients) || clients.some((client) => client._connected === true);
}

/** A timeout as a startup parameter: pg leaves out a falsy one, so 0 (none) goes as "0" to override the role's setting. */
function startupMillis(millis: number): number {
  return String(millis) as unknown as number;
}
