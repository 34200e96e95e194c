// Keeps the benchmark and PostgreSQL on separate CPUs where Linux's taskset allows. On a 2-core machine the scheduler
// otherwise puts server processes on the benchmark's core now and then, and two identical connections can then differ
// by 40 %; a database on CPUs of its own is also closer to production, where it runs on another host.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Pins PostgreSQL (the postmaster, its processes and every backend it forks later) to CPUs 1… and this process,
 * with whatever it starts, to CPU 0. Returns what was done, for the report; pins nothing where it cannot.
 */
export function pinCpus(dataDir: string): string {
  const cpus = os.cpus().length;
  if (process.platform !== 'linux' || cpus < 2 || spawnSync('taskset', ['-V']).status !== 0) {
    return 'not pinned (needs Linux, taskset and 2 or more CPUs)';
  }
  try {
    const postmaster = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0].trim();
    const children = execFileSync('ps', ['--ppid', postmaster, '-o', 'pid=']).toString().split(/\s+/).filter(Boolean);
    const serverCpus = cpus === 2 ? '1' : `1-${cpus - 1}`;
    for (const pid of [postmaster, ...children]) execFileSync('taskset', ['-a', '-p', '-c', serverCpus, pid], { stdio: 'ignore' });
    execFileSync('taskset', ['-a', '-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
    return `benchmark and the processes it starts on CPU 0, PostgreSQL on CPU ${serverCpus} (taskset)`;
  } catch (err) {
    return `not pinned (${(err as Error).message.split('\n')[0]})`;
  }
}
