// withRetry: reruns an attempt while its classified failure allows it, with jittered exponential backoff, a deadline
// that no retry may cross and a per-container token budget so retries never amplify an outage. Classification is
// classify.ts's job; an attempt reports it by throwing AttemptFailed.
import type { Failure } from './classify';
import { ConfigurationError, DbError, DeadlineExceededError } from './errors';
import { callHook, RetryEvent } from './hooks';

/** The part of the Lambda context the deadline needs. */
export interface LambdaContextLike {
  getRemainingTimeInMillis(): number;
  /** Copied into log lines and metrics when present. */
  readonly awsRequestId?: string;
}

/** Per-call deadline options shared by query() and withTransaction(). */
export interface DeadlineOptions {
  /** The handler's Lambda context: the deadline becomes its remaining time less a reserve. */
  readonly context?: LambdaContextLike;
  /** An absolute deadline (epoch milliseconds or a Date); wins over `context`. */
  readonly deadline?: number | Date;
}

/** The least time worth starting an attempt with. */
export const MIN_ATTEMPT_MILLIS = 100;

/** Resolves the operation's deadline: explicit, else Lambda time left less max(500 ms, 10 %), else the budget. */
export function resolveDeadline(options: DeadlineOptions, operationTimeoutMillis: number, now: number): number {
  if (options.deadline !== undefined) {
    const deadline = +options.deadline;
    // NaN would compare false everywhere: no deadline, no client timeout, a retry loop bounded by attempts alone.
    if (!Number.isFinite(deadline)) throw new ConfigurationError(`Expected \`deadline\` to be a Date or epoch milliseconds, got ${describeValue(options.deadline)}.`);
    return deadline;
  }
  if (options.context) {
    const remaining = options.context.getRemainingTimeInMillis();
    if (typeof remaining !== 'number' || !Number.isFinite(remaining)) {
      throw new ConfigurationError(`Expected \`context.getRemainingTimeInMillis()\` to return a number of milliseconds, got ${describeValue(remaining)}.`);
    }
    return now + remaining - Math.max(500, remaining * 0.1);
  }
  return now + operationTimeoutMillis;
}

function describeValue(value: unknown): string {
  if (value instanceof Date) return 'an invalid Date';
  if (typeof value === 'number' || value === undefined || value === null) return String(value);
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** One statement's client-side timeout: the configured query timeout (0: none), clamped to what is left of the deadline. */
export function clampTimeoutMillis(queryTimeoutMillis: number, deadline: number, now = Date.now()): number {
  return Math.max(1, Math.min(queryTimeoutMillis || Infinity, deadline - now));
}

/** A token bucket shared by every operation of one database instance (one per Lambda container). */
export class RetryBudget {
  private tokens: number;

  constructor(private readonly capacity: number) {
    this.tokens = capacity;
  }

  /** Takes `cost` tokens if there are that many. */
  tryAcquire(cost: number): boolean {
    if (this.tokens < cost) return false;
    this.tokens -= cost;
    return true;
  }

  /** Called after a first-try success: slowly refills the bucket. */
  refund(amount = 0.1): void {
    this.tokens = Math.min(this.capacity, this.tokens + amount);
  }

  get available(): number {
    return this.tokens;
  }
}

/** Thrown by an attempt to hand its classified failure to withRetry; never escapes it. */
export class AttemptFailed {
  constructor(readonly failure: Failure, readonly thrown: unknown = failure.error) {}
}

/** How one operation retries. */
export interface RetryPolicy {
  readonly kind: RetryEvent['kind'];
  readonly deadline: number;
  readonly maxAttempts: number;
  readonly baseDelayMillis: number;
  readonly maxDelayMillis: number;
  readonly budget: RetryBudget;
  /** Whether 'idempotent' failures may be retried (the caller said so). */
  readonly idempotent: boolean;
  readonly onRetry?: (event: RetryEvent) => void;
  readonly warn: (message: string, fields?: Record<string, unknown>) => void;
  readonly now?: () => number;
  readonly sleep?: (millis: number) => Promise<void>;
  readonly random?: () => number;
}

const defaultSleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis));

function withAttempts(thrown: unknown, attempts: number): unknown {
  if (thrown instanceof DbError) thrown.attempts = attempts;
  return thrown;
}

/**
 * Runs `attempt` until it succeeds or its failure may not, or cannot in time, be retried. The first attempt runs
 * without any of the retry machinery: only a failure enters the loop.
 */
export function withRetry<T>(attempt: (attemptNumber: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  let first: Promise<T>;
  try {
    first = attempt(1);
  } catch (caught) {
    first = Promise.reject(caught);
  }
  return first.then(
    (result) => {
      policy.budget.refund();
      return result;
    },
    (caught: unknown) => retryAfter(caught, attempt, policy),
  );
}

/**
 * The retry loop, entered with the first attempt's failure (`attempt` is then called with 2, 3, …). For a caller
 * that runs its first attempt itself, as query() does to spare a promise on the path that succeeds at once.
 */
export async function retryAfter<T>(firstFailure: unknown, attempt: (attemptNumber: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  const now = policy.now ?? Date.now;
  const random = policy.random ?? Math.random;
  let caught = firstFailure;
  for (let attemptNumber = 1, retriesOfClass = 0, lastClass: unknown; ; attemptNumber++) {
    if (!(caught instanceof AttemptFailed)) throw caught;
    const { failure, thrown } = caught;
    const error = failure.error;
    retriesOfClass = error.constructor === lastClass ? retriesOfClass + 1 : 1;
    lastClass = error.constructor;
    const allowed = failure.retry === 'always' || (failure.retry === 'idempotent' && policy.idempotent);
    if (!allowed || attemptNumber >= policy.maxAttempts || (failure.maxRetries !== undefined && retriesOfClass > failure.maxRetries)) {
      throw withAttempts(thrown, attemptNumber);
    }
    const base = Math.max(policy.baseDelayMillis, failure.baseDelayMillis);
    const ceiling = Math.min(policy.maxDelayMillis, base * 2 ** (attemptNumber - 1));
    // Full jitter; a class with a longer base (53300, a restarting server) keeps half of it as a floor.
    const floor = failure.baseDelayMillis > policy.baseDelayMillis ? ceiling / 2 : 0;
    const delayMillis = Math.round(floor + random() * (ceiling - floor));
    if (now() + delayMillis + MIN_ATTEMPT_MILLIS > policy.deadline) {
      throw new DeadlineExceededError(`Gave up after ${attemptNumber} attempt(s): the deadline leaves no time for another (last: ${error.name}).`, {
        cause: error, phase: error.phase, ambiguous: error.ambiguous, sqlState: error.sqlState, attempts: attemptNumber,
      });
    }
    if (!policy.budget.tryAcquire(failure.cost)) {
      policy.warn('Retry budget exhausted; failing fast.', { error: error.code, attempts: attemptNumber });
      throw withAttempts(thrown, attemptNumber);
    }
    callHook(policy.onRetry, {
      kind: policy.kind, attempt: attemptNumber, delayMillis, errorCode: error.code, sqlState: error.sqlState,
      retriesLeft: policy.maxAttempts - attemptNumber,
    }, policy.warn);
    await (policy.sleep ?? defaultSleep)(delayMillis);
    try {
      return await attempt(attemptNumber + 1);
    } catch (next) {
      caught = next;
    }
  }
}
