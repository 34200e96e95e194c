// 5. Secrets Manager calls, counted by the local endpoint: N concurrent cold invocations in one fresh process, and M
// invocations spread over a few seconds with a 1 s cache lifetime, for ours and the peers (SDK-bundled builds).
// Each handler reads its own secret id, so the processes run side by side and are still counted apart.
import type { BenchBundle, BenchHandler } from './bundles';
import type { BenchEnvironment } from './environment';
import type { Section } from './report';
import { runBundle } from './runner';

/** Options for {@link countSecretCalls}. */
export interface SecretCallsOptions {
  /** Concurrent cold invocations. */
  readonly burst: number;
  /** Invocations in the TTL scenario, evenly spaced over spreadMillis. */
  readonly spreadInvocations: number;
  readonly spreadMillis: number;
  readonly runner: string;
}

const TTL_MILLIS = 1000;

const EXPECTATIONS: Record<BenchHandler, { burst: (n: number) => number | undefined; spread: (n: number) => number | undefined; why: string }> = {
  'lambda-pg': {
    burst: () => 1,
    spread: (expectedPerTtl) => expectedPerTtl,
    why: 'single-flight cache with a TTL (DB_SECRET_TTL_SECONDS=1 here)',
  },
  'minimal (pg + GetSecretValue)': {
    burst: () => 1,
    spread: () => 1,
    why: 'caches the pool promise: one fetch, never refreshed (a rotated password breaks it until the sandbox is recycled)',
  },
  'Powertools getSecret': {
    burst: () => undefined,
    spread: (expectedPerTtl) => expectedPerTtl,
    why: 'cache with maxAge (POWERTOOLS_PARAMETERS_MAX_AGE=1 here) but no single-flight: concurrent misses each fetch',
  },
};

/** Runs the scenarios and returns the section, with the target "exactly one fetch per TTL per sandbox". */
export async function countSecretCalls(env: BenchEnvironment, bundles: readonly BenchBundle[], options: SecretCallsOptions): Promise<Section> {
  const handlers = bundles.filter((bundle) => bundle.sdk === 'bundled');
  const baseEnv = { ...env.awsEnv, DB_SSL_CA_FILE: env.postgres.caFile, AWS_LAMBDA_FUNCTION_NAME: 'bench-secret-calls' };
  const secretFor = (scenario: string, bundle: BenchBundle) => `bench/${scenario}/${handlers.indexOf(bundle)}`;
  const callsTo = (secretId: string) => env.secrets.calls.filter((call) => call.secretId === secretId).length;
  for (const bundle of handlers) {
    env.putSecret(secretFor('burst', bundle));
    env.putSecret(secretFor('ttl', bundle));
  }

  await Promise.all(handlers.map((bundle) => runBundle(options.runner, bundle.file, {
    mode: 'burst', count: options.burst, env: { ...baseEnv, DB_SECRET_ID: secretFor('burst', bundle) },
  })));
  await Promise.all(handlers.map((bundle) => runBundle(options.runner, bundle.file, {
    mode: 'spread', count: options.spreadInvocations, spreadMillis: options.spreadMillis,
    env: { ...baseEnv, DB_SECRET_ID: secretFor('ttl', bundle), DB_SECRET_TTL_SECONDS: String(TTL_MILLIS / 1000), POWERTOOLS_PARAMETERS_MAX_AGE: String(TTL_MILLIS / 1000) },
  })));

  // One fetch at the start, then one per expired TTL while invocations keep coming.
  const expectedPerTtl = Math.ceil(options.spreadMillis / TTL_MILLIS);
  const rows = handlers.map((bundle) => {
    const expect = EXPECTATIONS[bundle.handler];
    const expected = (value: number | undefined) => (value === undefined ? '' : ` (expected ${value})`);
    return [
      bundle.handler,
      `${callsTo(secretFor('burst', bundle))}${expected(expect.burst(options.burst))}`,
      `${callsTo(secretFor('ttl', bundle))}${expected(expect.spread(expectedPerTtl))}`,
      expect.why,
    ];
  });
  const ours = handlers.find((bundle) => bundle.handler === 'lambda-pg')!;
  const burstCalls = callsTo(secretFor('burst', ours));
  const ttlCalls = callsTo(secretFor('ttl', ours));
  return {
    title: '5. Secrets Manager calls',
    intro: [
      `GetSecretValue requests the local endpoint received. Burst: one fresh process, ${options.burst} invocations at ` +
        `once before any has answered. TTL: one process, ${options.spreadInvocations} invocations one after another, ` +
        `evenly spaced over ${options.spreadMillis / 1000} s, with a ${TTL_MILLIS / 1000} s cache lifetime.`,
    ],
    tables: [{
      headers: ['handler', `${options.burst} concurrent cold calls`, `${options.spreadInvocations} calls over ${options.spreadMillis / 1000} s, TTL ${TTL_MILLIS / 1000} s`, 'why'],
      rows,
    }],
    notes: [
      'Ours refreshes inside the request that finds the TTL expired (the others wait on the same fetch); it does ' +
        'not refresh ahead in the background, which a frozen Lambda sandbox could not run anyway.',
      'Our TTL is jittered up to 10 % shorter so that a fleet of sandboxes does not refresh in step.',
    ],
    targets: [
      { name: 'secret fetches, burst', goal: `1 for ${options.burst} concurrent cold calls`, measured: String(burstCalls), met: burstCalls === 1 },
      { name: 'secret fetches, across a TTL', goal: `1 per TTL (${expectedPerTtl} in ${options.spreadMillis / 1000} s)`, measured: String(ttlCalls), met: ttlCalls === expectedPerTtl },
    ],
  };
}
