// `npm run bench [-- --quick] [--rounds n] [--queries n] [--processes n] … [--out path]`: per-query and transaction
// overhead, cold start, bundle size and Secrets Manager calls of this module against raw pg and peers, in one run on
// an embedded PostgreSQL with TLS and a local Secrets Manager; prints the tables and writes docs/benchmarks.md
// (with --quick, a temporary file unless --out says otherwise).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildBenchBundles, buildLibraryBundle } from './bench/bundles';
import { measureBundleSize } from './bench/bundle-size';
import { measureColdStart } from './bench/cold-start';
import { describeServer, startBenchEnvironment } from './bench/environment';
import { pinCpus } from './bench/cpu-pinning';
import { collectFacts } from './bench/facts';
import { parseBenchArgs } from './bench/options';
import { measureQueryOverhead } from './bench/query-overhead';
import { renderReport, renderSection, renderTable, targetsTable, type Section } from './bench/report';
import { writeRunner } from './bench/runner';
import { countSecretCalls } from './bench/secret-calls';
import { measureTransactionOverhead } from './bench/transaction-overhead';

async function main(argv: string[]): Promise<void> {
  let options: ReturnType<typeof parseBenchArgs>;
  try {
    options = parseBenchArgs(argv);
  } catch (err) {
    // A usage mistake: the sentence says it all.
    console.error(`Benchmark failed: ${(err as Error).message}`);
    process.exitCode = 2;
    return;
  }
  const startedAt = new Date();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lambda-pg-bench-bundles-'));
  // Also on Ctrl-C, where the embedded server's exit hook ends the process before any finally block runs.
  const removeWorkDir = () => fs.rmSync(workDir, { recursive: true, force: true });
  process.once('exit', removeWorkDir);
  const [envOutcome, bundlesOutcome, libraryOutcome] = await Promise.allSettled([startBenchEnvironment(), buildBenchBundles(workDir), buildLibraryBundle()]);
  if (envOutcome.status === 'rejected' || bundlesOutcome.status === 'rejected' || libraryOutcome.status === 'rejected') {
    // Stop the server if it did start, then report the first failure.
    if (envOutcome.status === 'fulfilled') await envOutcome.value.close();
    throw [envOutcome, bundlesOutcome, libraryOutcome].map((outcome) => (outcome.status === 'rejected' ? outcome.reason : undefined)).find(Boolean);
  }
  const [env, bundles, library] = [envOutcome.value, bundlesOutcome.value, libraryOutcome.value];
  const sections: Section[] = [];
  const run = async (measure: () => Promise<Section>) => {
    const section = await measure();
    sections.push(section);
    console.log(`\n${renderSection(section)}\n`);
  };
  try {
    const runner = writeRunner(workDir);
    const cpuPinning = pinCpus(env.postgres.dataDir);
    await run(() => measureQueryOverhead(env, { ...options, library }));
    await run(() => measureTransactionOverhead(env, { ...options, library }));
    await run(() => measureColdStart(env, bundles, { processes: options.processes, runner }));
    await run(async () => measureBundleSize(bundles));
    await run(() => countSecretCalls(env, bundles, { burst: options.burst, spreadInvocations: 25, spreadMillis: 2500, runner }));
    const command = `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`;
    const facts = collectFacts(await describeServer(env), cpuPinning, command, startedAt, Date.now() - startedAt.getTime());
    fs.mkdirSync(path.dirname(options.out), { recursive: true });
    fs.writeFileSync(options.out, renderReport(facts, sections));
    console.log(`## Targets\n\n${renderTable(targetsTable(sections))}\n\nReport written to ${path.relative(process.cwd(), options.out) || options.out}.`);
  } finally {
    await env.close();
    removeWorkDir();
  }
}

main(process.argv.slice(2)).catch((err: Error) => {
  console.error(`Benchmark failed: ${err.stack ?? err.message}`);
  process.exitCode = 1;
});
