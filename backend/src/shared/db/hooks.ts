// Observability hooks. Events carry durations, attempts and classifications: never SQL parameter values or secrets.
// A hook that throws is logged and otherwise ignored, so observability can never fail a query.

/** Emitted after every query() and withTransaction() call, successful or not. */
export interface QueryEvent {
  readonly kind: 'query' | 'transaction';
  readonly durationMillis: number;
  readonly attempts: number;
  readonly ok: boolean;
  /** The error's `code` (e.g. DB_UNIQUE_VIOLATION) when it failed. */
  readonly errorCode?: string;
  readonly sqlState?: string;
  readonly rowCount?: number | null;
  /** The Lambda request id, when the call was given a context. */
  readonly requestId?: string;
}

/** Emitted before each retry, with the delay about to be waited. */
export interface RetryEvent {
  readonly kind: 'query' | 'transaction' | 'connect';
  readonly attempt: number;
  readonly delayMillis: number;
  readonly errorCode: string;
  readonly sqlState?: string;
  readonly retriesLeft: number;
}

/** Emitted when credentials are fetched again. */
export interface CredentialsRefreshEvent {
  readonly source: string;
  readonly reason: 'expired' | 'rejected' | 'initial';
  readonly ok: boolean;
  readonly stale: boolean;
}

/** Optional callbacks; each receives a frozen event. */
export interface DbHooks {
  readonly onQuery?: (event: QueryEvent) => void;
  readonly onRetry?: (event: RetryEvent) => void;
  readonly onCredentialsRefresh?: (event: CredentialsRefreshEvent) => void;
}

/** Calls a hook without letting it throw into the caller, nor an async hook's rejection go unhandled. */
export function callHook<E>(hook: ((event: E) => void) | undefined, event: E, warn: (message: string, fields?: Record<string, unknown>) => void): void {
  if (!hook) return;
  const ignored = (err: unknown) => warn('An observability hook threw; ignored.', { error: (err as Error)?.name });
  try {
    const returned: unknown = hook(Object.freeze(event));
    if (returned && typeof (returned as PromiseLike<unknown>).then === 'function') (returned as PromiseLike<unknown>).then(undefined, ignored);
  } catch (err) {
    ignored(err);
  }
}
