// Read routing for a reader endpoint (DB_READER_HOST): read-only work goes to the reader's pool; while the reader is
// unreachable it falls back to the writer (logged once per outage) and tries the reader again after a pause.
// Writes never go to the reader.
import type { PoolClient } from 'pg';
import type { DbConfig } from './config';
import type { CredentialsProvider, DbCredentials } from './credentials';
import { AuthenticationError, ConnectionError, DeadlineExceededError, PoolExhaustedError, TlsError } from './errors';
import { IamCredentials } from './iam-credentials';
import type { Logger } from './log';
import type { PoolManager } from './pool';
import { AttemptFailed, MIN_ATTEMPT_MILLIS } from './retry';
import { makeCredentials } from './secret-format';

/** Where an operation gets its client: a pool, or the read router in front of two pools. */
export interface ClientSource {
  acquire(deadline: number, validate: boolean): Promise<PoolClient>;
  lostError(client: PoolClient): Error | undefined;
}

/** After a failed connection to the reader, reads use the writer for this long before trying the reader again. */
export const READER_RETRY_AFTER_MILLIS = 10_000;

/** The writer's credentials pointed at the reader's address (an IAM token is signed for the reader's host instead). */
export function readerCredentials(writer: CredentialsProvider, config: DbConfig): CredentialsProvider {
  const host = config.readerHost as string;
  if (config.auth === 'iam') {
    // Object.create keeps the non-enumerable fields (urlCredentials) that a spread would drop.
    return new IamCredentials(Object.create(config, { host: { value: host }, port: { value: config.readerPort ?? config.port } }));
  }
  let last: { from: DbCredentials; to: DbCredentials } | undefined;
  const atReader = (from: DbCredentials): DbCredentials => {
    if (last?.from !== from) {
      last = { from, to: makeCredentials({ ...from, host, port: config.readerPort ?? from.port, source: `${from.source}, reader ${host}` }, from.password) };
    }
    return last.to;
  };
  return {
    description: `${writer.description}, reader ${host}`,
    peek: () => {
      const fresh = writer.peek();
      return fresh && atReader(fresh);
    },
    get: async () => atReader(await writer.get()),
    refreshAfterRejection: async (rejected) => atReader(await writer.refreshAfterRejection(rejected)),
    clear: () => writer.clear(),
    fixed: writer.fixed,
  };
}

/** Sends reads to the reader pool and falls back to the writer pool while the reader cannot be reached. */
export class ReadRouter implements ClientSource {
  private downUntil = 0;
  private readonly owners = new WeakMap<PoolClient, PoolManager>();

  constructor(
    private readonly writer: PoolManager,
    private readonly reader: PoolManager,
    private readonly log: Logger,
  ) {}

  async acquire(deadline: number, validate: boolean): Promise<PoolClient> {
    if (Date.now() >= this.downUntil) {
      // A call that comes with (almost) no time left fails by its deadline without the reader being tried at all.
      const couldTry = deadline - Date.now() >= MIN_ATTEMPT_MILLIS;
      try {
        return this.own(await this.reader.acquire(deadline, validate), this.reader);
      } catch (err) {
        const failure = err instanceof AttemptFailed ? err.failure : undefined;
        const error = failure?.error;
        // Only an unreachable reader falls back; a wrong CA or rejected credentials are configuration to fix. A
        // connect that ran into the deadline counts as unreachable too: with a deadline shorter than the connect
        // timeout (a short Lambda), that is all a reader that drops packets ever shows.
        const unreachable =
          (error instanceof ConnectionError && failure?.retry === 'always' && !(error instanceof PoolExhaustedError || error instanceof TlsError || error instanceof AuthenticationError)) ||
          (error instanceof DeadlineExceededError && error.phase === 'connect' && couldTry);
        if (!unreachable) throw err;
        if (this.downUntil === 0) this.log.warn('The reader endpoint is unreachable; reads use the writer for now.', { error: error.code });
        this.downUntil = Date.now() + READER_RETRY_AFTER_MILLIS;
        // Marked down even when no time is left to fall back: the next reads go to the writer at once.
        if (Date.now() >= deadline) throw err;
        return this.own(await this.writer.acquire(deadline, validate), this.writer);
      }
    }
    return this.own(await this.writer.acquire(deadline, validate), this.writer);
  }

  /** Remembers the pool a client came from; a client from the reader ends an outage, so the next one is logged. */
  private own(client: PoolClient, pool: PoolManager): PoolClient {
    if (pool === this.reader) this.downUntil = 0;
    this.owners.set(client, pool);
    return client;
  }

  lostError(client: PoolClient): Error | undefined {
    return (this.owners.get(client) ?? this.writer).lostError(client);
  }
}
