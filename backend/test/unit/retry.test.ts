import { DatabaseError } from 'pg-protocol';
import { classifyConnectFailure, classifyStatementFailure, Failure, RetryRule } from '../../src/shared/db/classify';
import { ConfigurationError, ConnectionLostError, DbError, DeadlineExceededError, SerializationFailureError, TooManyConnectionsError } from '../../src/shared/db/errors';
import type { RetryEvent } from '../../src/shared/db/hooks';
import { AttemptFailed, resolveDeadline, RetryBudget, RetryPolicy, withRetry } from '../../src/shared/db/retry';

const START = 1_700_000_000_000;

let clock: number;
let delays: number[];

beforeEach(() => {
  clock = START;
  delays = [];
});

/** A policy on a fake clock whose sleep records the delay and advances the clock instead of waiting. */
function createPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  return {
    kind: 'query',
    deadline: START + 60_000,
    maxAttempts: 5,
    baseDelayMillis: 50,
    maxDelayMillis: 2000,
    budget: new RetryBudget(10),
    idempotent: false,
    warn: jest.fn(),
    now: () => clock,
    sleep: async (millis) => {
      delays.push(millis);
      clock += millis;
    },
    random: () => 0.5,
    ...overrides,
  };
}

function serverError(code: string, message = `server error ${code}`, detail?: string): DatabaseError {
  return Object.assign(new DatabaseError(message, message.length, 'error'), { code, severity: 'ERROR', detail });
}

function serializationFailure(): Failure {
  return classifyStatementFailure(serverError('40001', 'could not serialize access due to concurrent update'), 'statement');
}

function failureOf(error: DbError, retry: RetryRule, extra: Partial<Failure> = {}): Failure {
  return { error, retry, destroyClient: false, refreshCredentials: false, cost: 1, baseDelayMillis: 50, ...extra };
}

/** Awaits a promise that must reject and returns what it rejected with. */
async function rejectionOf(promise: Promise<unknown>): Promise<DbError> {
  try {
    await promise;
  } catch (err) {
    return err as DbError;
  }
  throw new Error('Expected the promise to reject.');
}

/** An attempt that fails with a fresh failure from `makeFailure` `times` times, then returns 'ok'. */
function failingTimes(times: number, makeFailure: () => Failure) {
  const thrown: DbError[] = [];
  const attempt = jest.fn(async (_attemptNumber: number): Promise<string> => {
    if (thrown.length < times) {
      const failure = makeFailure();
      thrown.push(failure.error);
      throw new AttemptFailed(failure);
    }
    return 'ok';
  });
  return { attempt, thrown };
}

describe('withRetry', () => {
  it('reruns a serialization failure until it succeeds', async () => {
    const { attempt } = failingTimes(2, serializationFailure);

    const result = await withRetry(attempt, createPolicy());

    expect(result).toBe('ok');
    expect(attempt).toHaveBeenCalledTimes(3);
    expect(attempt.mock.calls.map(([n]) => n)).toEqual([1, 2, 3]);
  });

  it('gives up after maxAttempts and throws the original error with attempts set', async () => {
    const { attempt, thrown } = failingTimes(Infinity, serializationFailure);

    const error = await rejectionOf(withRetry(attempt, createPolicy({ maxAttempts: 3 })));

    expect(attempt).toHaveBeenCalledTimes(3);
    expect(error).toBe(thrown[2]);
    expect(error).toBeInstanceOf(SerializationFailureError);
    expect(error.attempts).toBe(3);
  });

  it('throws the object the attempt chose to surface, not the classified error', async () => {
    const raw = serverError('23505');
    const attempt = async (): Promise<never> => {
      throw new AttemptFailed(classifyStatementFailure(raw, 'statement'), raw);
    };

    await expect(withRetry(attempt, createPolicy())).rejects.toBe(raw);
  });

  it('rethrows an error that was not classified without retrying', async () => {
    const bug = new TypeError('undefined is not a function');
    const attempt = jest.fn(async (): Promise<never> => {
      throw bug;
    });

    await expect(withRetry(attempt, createPolicy())).rejects.toBe(bug);
    expect(attempt).toHaveBeenCalledTimes(1);
  });

  it("throws a 'never' failure at once", async () => {
    const { attempt, thrown } = failingTimes(Infinity, () => classifyStatementFailure(serverError('23505'), 'statement'));

    const error = await rejectionOf(withRetry(attempt, createPolicy()));

    expect(attempt).toHaveBeenCalledTimes(1);
    expect(delays).toEqual([]);
    expect(error).toBe(thrown[0]);
    expect(error.attempts).toBe(1);
  });

  describe("an 'idempotent' failure", () => {
    const lost = () => classifyStatementFailure(new Error('Connection terminated unexpectedly'), 'statement');

    it('is not retried unless the caller declared the operation idempotent', async () => {
      const { attempt, thrown } = failingTimes(1, lost);

      await expect(withRetry(attempt, createPolicy({ idempotent: false }))).rejects.toBe(thrown[0]);
      expect(attempt).toHaveBeenCalledTimes(1);
    });

    it('is retried when the caller declared the operation idempotent', async () => {
      const { attempt } = failingTimes(1, lost);

      await expect(withRetry(attempt, createPolicy({ idempotent: true }))).resolves.toBe('ok');
      expect(attempt).toHaveBeenCalledTimes(2);
    });
  });

  describe('backoff', () => {
    it('waits a full-jitter delay within [0, min(max, base·2^(n-1))]', async () => {
      const policy = { baseDelayMillis: 50, maxDelayMillis: 300, maxAttempts: 6 };

      await withRetry(failingTimes(5, serializationFailure).attempt, createPolicy({ ...policy, random: () => 0 }));
      const lowest = delays.splice(0);
      await withRetry(failingTimes(5, serializationFailure).attempt, createPolicy({ ...policy, random: () => 0.5 }));
      const middle = delays.splice(0);
      await withRetry(failingTimes(5, serializationFailure).attempt, createPolicy({ ...policy, random: () => 0.999_999 }));
      const highest = delays.splice(0);

      expect(lowest).toEqual([0, 0, 0, 0, 0]);
      expect(middle).toEqual([25, 50, 100, 150, 150]);
      expect(highest).toEqual([50, 100, 200, 300, 300]);
    });

    it('keeps half the ceiling as a floor for a class with a longer base', async () => {
      const restarting = () => failureOf(new ConnectionLostError('restarting', { retryable: true }), 'always', { baseDelayMillis: 250 });

      await withRetry(failingTimes(2, restarting).attempt, createPolicy({ random: () => 0 }));
      const lowest = delays.splice(0);
      await withRetry(failingTimes(2, restarting).attempt, createPolicy({ random: () => 0.999_999 }));
      const highest = delays.splice(0);

      expect(lowest).toEqual([125, 250]);
      expect(highest).toEqual([250, 500]);
    });
  });

  it('retries 53300 at most twice', async () => {
    const tooMany = () => classifyConnectFailure(Object.assign(new DatabaseError('sorry, too many clients already', 30, 'error'), { code: '53300', severity: 'FATAL' }));
    const { attempt, thrown } = failingTimes(Infinity, tooMany);

    const error = await rejectionOf(withRetry(attempt, createPolicy({ maxAttempts: 5 })));

    expect(attempt).toHaveBeenCalledTimes(3);
    expect(error).toBe(thrown[2]);
    expect(error).toBeInstanceOf(TooManyConnectionsError);
    expect(error.attempts).toBe(3);
  });

  describe('the deadline', () => {
    it('throws DeadlineExceededError rather than start a retry that would cross it', async () => {
      const ambiguous = () => classifyStatementFailure(new Error('Connection terminated unexpectedly'), 'statement');
      // random 0.5: the first delay is 25 ms (25 + 100 ≤ 150), the second 50 ms (25 + 50 + 100 > 150).
      const { attempt, thrown } = failingTimes(Infinity, ambiguous);

      const error = await rejectionOf(withRetry(attempt, createPolicy({ idempotent: true, deadline: START + 150 })));

      expect(attempt).toHaveBeenCalledTimes(2);
      expect(delays).toEqual([25]);
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect(error.cause).toBe(thrown[1]);
      expect(error).toMatchObject({ ambiguous: true, phase: 'statement', attempts: 2 });
    });

    it('copies a definitive last error as non-ambiguous with its SQLSTATE', async () => {
      const { attempt, thrown } = failingTimes(Infinity, serializationFailure);

      const error = await rejectionOf(withRetry(attempt, createPolicy({ deadline: START + 100 })));

      expect(attempt).toHaveBeenCalledTimes(1);
      expect(error).toBeInstanceOf(DeadlineExceededError);
      expect(error.cause).toBe(thrown[0]);
      expect(error).toMatchObject({ ambiguous: false, sqlState: '40001', attempts: 1 });
    });
  });

  describe('the retry budget', () => {
    it('charges 1 token per retry', async () => {
      const budget = new RetryBudget(10);

      await withRetry(failingTimes(2, serializationFailure).attempt, createPolicy({ budget }));

      expect(budget.available).toBe(8);
    });

    it('charges 2 tokens per timeout-class retry', async () => {
      const budget = new RetryBudget(10);
      const timeout = () => classifyStatementFailure(new Error('Query read timeout'), 'statement');

      await withRetry(failingTimes(2, timeout).attempt, createPolicy({ budget, idempotent: true }));

      expect(budget.available).toBe(6);
    });

    it('fails fast with the original error when the budget cannot pay for a retry', async () => {
      const budget = new RetryBudget(3);
      const warn = jest.fn();
      const costly = () => failureOf(new ConnectionLostError('lost', { retryable: true }), 'always', { cost: 2 });
      const { attempt, thrown } = failingTimes(Infinity, costly);

      const error = await rejectionOf(withRetry(attempt, createPolicy({ budget, warn })));

      expect(attempt).toHaveBeenCalledTimes(2);
      expect(error).toBe(thrown[1]);
      expect(error.attempts).toBe(2);
      expect(budget.available).toBe(1);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/budget/i), expect.anything());
    });

    it('does not retry at all when the budget is empty', async () => {
      const { attempt, thrown } = failingTimes(Infinity, serializationFailure);

      await expect(withRetry(attempt, createPolicy({ budget: new RetryBudget(0) }))).rejects.toBe(thrown[0]);
      expect(attempt).toHaveBeenCalledTimes(1);
    });

    it('refunds 0.1 token after a first-try success', async () => {
      const budget = new RetryBudget(10);
      budget.tryAcquire(1);

      await withRetry(async () => 'ok', createPolicy({ budget }));

      expect(budget.available).toBeCloseTo(9.1);
    });

    it('never refunds above capacity', async () => {
      const budget = new RetryBudget(10);

      await withRetry(async () => 'ok', createPolicy({ budget }));

      expect(budget.available).toBe(10);
    });

    it('refunds nothing after a success that needed a retry', async () => {
      const budget = new RetryBudget(10);

      await withRetry(failingTimes(1, serializationFailure).attempt, createPolicy({ budget }));

      expect(budget.available).toBe(9);
    });
  });

  describe('onRetry', () => {
    it('receives a frozen event that carries no values', async () => {
      const events: RetryEvent[] = [];
      const detailed = () => classifyStatementFailure(serverError('40001', 'could not serialize access for id 4711', 'Key (email)=(a@b.com)'), 'statement');

      await withRetry(failingTimes(1, detailed).attempt, createPolicy({ onRetry: (event) => events.push(event) }));

      expect(events).toHaveLength(1);
      expect(Object.isFrozen(events[0])).toBe(true);
      expect(events[0]).toEqual({ kind: 'query', attempt: 1, delayMillis: 25, errorCode: 'DB_SERIALIZATION_FAILURE', sqlState: '40001', retriesLeft: 4 });
      expect(JSON.stringify(events[0])).not.toMatch(/4711|a@b\.com/);
    });

    it('cannot fail the operation by throwing', async () => {
      const warn = jest.fn();
      const onRetry = () => {
        throw new Error('metrics backend down');
      };

      const result = await withRetry(failingTimes(1, serializationFailure).attempt, createPolicy({ onRetry, warn }));

      expect(result).toBe('ok');
      expect(warn).toHaveBeenCalled();
    });
  });
});

describe('resolveDeadline', () => {
  const now = START;
  const context = (remaining: number) => ({ getRemainingTimeInMillis: () => remaining });

  it('keeps a reserve of 500 ms from a short Lambda remaining time', () => {
    expect(resolveDeadline({ context: context(3000) }, 10_000, now)).toBe(now + 2500);
  });

  it('keeps a reserve of 10 % from a long Lambda remaining time', () => {
    expect(resolveDeadline({ context: context(20_000) }, 10_000, now)).toBe(now + 18_000);
  });

  it('prefers an explicit deadline, as epoch milliseconds or a Date, over the context', () => {
    expect(resolveDeadline({ deadline: now + 1234, context: context(20_000) }, 10_000, now)).toBe(now + 1234);
    expect(resolveDeadline({ deadline: new Date(now + 4321) }, 10_000, now)).toBe(now + 4321);
  });

  it('falls back to the operation budget', () => {
    expect(resolveDeadline({}, 10_000, now)).toBe(now + 10_000);
  });

  it.each([
    ['an invalid Date', new Date('not a date'), /got an invalid Date/],
    ['NaN', Number.NaN, /got NaN/],
    ['a string', '2026-01-01' as unknown as number, /got a string/],
  ])('rejects %s as a deadline, which would disable every timeout', (_name, deadline, message) => {
    const resolve = () => resolveDeadline({ deadline }, 10_000, now);

    expect(resolve).toThrow(ConfigurationError);
    expect(resolve).toThrow(message);
  });

  it('rejects a context whose remaining time is not a number', () => {
    const resolve = () => resolveDeadline({ context: { getRemainingTimeInMillis: () => undefined as unknown as number } }, 10_000, now);

    expect(resolve).toThrow(ConfigurationError);
    expect(resolve).toThrow(/getRemainingTimeInMillis\(\)` to return a number of milliseconds, got undefined/);
  });
});

describe('RetryBudget', () => {
  it('refuses a cost larger than what is left, without taking anything', () => {
    const budget = new RetryBudget(3);
    budget.tryAcquire(2);

    const acquired = budget.tryAcquire(2);

    expect(acquired).toBe(false);
    expect(budget.available).toBe(1);
  });
});
