// The facts a benchmark report needs to be read and reproduced: machine (CPU model, cores, memory, OS), CPU pinning,
// Node, the versions of pg, the AWS SDK, Powertools and esbuild as installed, PostgreSQL's version and settings, the
// command and the date.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { version as esbuildVersion } from 'esbuild';
import type { RunFacts } from './report';

const NODE_MODULES = path.resolve(__dirname, '../../node_modules');

function installed(name: string): string {
  // Read from disk: some packages do not export their package.json.
  return (JSON.parse(fs.readFileSync(path.join(NODE_MODULES, name, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Collects the facts; `server` is describeServer()'s line, `cpuPinning` pinCpus()'s and `command` what was run. */
export function collectFacts(server: string, cpuPinning: string, command: string, startedAt: Date, durationMillis: number): RunFacts {
  const cpus = os.cpus();
  return {
    rows: [
      ['machine', `${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, ${os.type()} ${os.release()} ${os.arch()}`],
      ['CPUs', cpuPinning],
      ['Node', process.version],
      ['pg', installed('pg')],
      ['PostgreSQL', server],
      ['@aws-sdk/client-secrets-manager', installed('@aws-sdk/client-secrets-manager')],
      ['@aws-lambda-powertools/parameters', installed('@aws-lambda-powertools/parameters')],
      ['esbuild', esbuildVersion],
      ['command', `\`${command}\``],
      ['date', startedAt.toISOString()],
      ['duration', `${Math.round(durationMillis / 1000)} s`],
    ],
  };
}
