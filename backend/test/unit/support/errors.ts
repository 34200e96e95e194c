// Helpers for tests about errors: catch what a call throws, and collect every string an error could leak through
// (message, stack, JSON, util.inspect, along the whole cause chain).
import { inspect } from 'node:util';

/** The error `fn` throws; fails the test when it returns normally. */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('Expected the call to throw.');
}

/** Message, stack and serialized forms of an error and of every error in its cause chain. */
export function errorText(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: unknown; stack?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 10; e = e.cause as typeof e, depth++) {
    parts.push(String(e.message), String(e.stack), JSON.stringify(e) ?? '', inspect(e));
  }
  return parts.join('\n');
}
