// The JavaScript cost of each variant without the network: pg.Client's own query path (config normalisation, read
// timeout, promise) runs unchanged, but its connection is replaced by a loopback that answers every query at once.
// Immune to the scheduling noise of a shared machine, so it shows our per-call overhead in microseconds.
import { Client } from 'pg';
import { fixed, median, roundOrder, timeMillis } from './stats';

/** A variant: one call (a query or a whole transaction) through some API. */
export interface LoopbackVariant {
  readonly name: string;
  readonly run: (i: number) => Promise<unknown>;
}

interface LoopbackQuery {
  _result: { rows: unknown[]; command: string; rowCount: number };
  callback: (err: Error | null, result: unknown) => void;
}

interface ClientInternals {
  _connected: boolean;
  _queryable: boolean;
  _ending: boolean;
  _queryQueue: LoopbackQuery[];
  emit(event: string): boolean;
}

const PATCHED = ['connect', '_pulseQueryQueue', 'end', 'getTransactionStatus', 'ref', 'unref'] as const;

/** While `work` runs, every pg.Client (pooled or not) talks to the loopback; the prototype is restored after. */
export async function withLoopback<T>(work: () => Promise<T>): Promise<T> {
  const proto = Client.prototype as unknown as Record<string, unknown>;
  const saved = PATCHED.map((name) => [name, proto[name]] as const);
  Object.assign(proto, {
    connect(this: ClientInternals, callback?: (err?: Error) => void) {
      this._connected = true;
      this._queryable = true;
      if (callback) return void setImmediate(callback);
      return Promise.resolve();
    },
    _pulseQueryQueue(this: ClientInternals) {
      const query = this._queryQueue.shift();
      if (!query) return;
      Object.assign(query._result, { command: 'SELECT', rowCount: 1 });
      query._result.rows.push({ n: 1, xid: '1' });
      queueMicrotask(() => query.callback(null, query._result));
    },
    end(this: ClientInternals, callback?: () => void) {
      this._ending = true;
      setImmediate(() => this.emit('end'));
      if (callback) return void setImmediate(callback);
      return Promise.resolve();
    },
    getTransactionStatus: () => 'I',
    ref: () => undefined,
    unref: () => undefined,
  });
  try {
    return await work();
  } finally {
    for (const [name, value] of saved) proto[name] = value;
  }
}

/** Interleaved rounds of `calls` sequential calls per variant; median µs per call, by name. */
export async function loopbackMicros(variants: readonly LoopbackVariant[], rounds: number, calls: number): Promise<Map<string, number>> {
  const samples = new Map(variants.map((variant) => [variant.name, [] as number[]]));
  const batch = (variant: LoopbackVariant, count: number) => timeMillis(async () => {
    for (let i = 0; i < count; i++) await variant.run(i);
  });
  for (const variant of variants) await batch(variant, calls);
  for (let round = 0; round < rounds; round++) {
    for (const variant of roundOrder(variants, round)) samples.get(variant.name)!.push(((await batch(variant, calls)) * 1000) / calls);
  }
  return new Map([...samples].map(([name, values]) => [name, median(values)]));
}

/** Formats µs with two decimals. */
export const micros = (value: number) => fixed(value, 2);
