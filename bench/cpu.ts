import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/** The processes a bench run involves: itself (the client, and the raw encoders) and the stack it started. */
export const PROCESS_ROLES = ['bench', 'api', 'worker', 'redis'] as const;
export type ProcessRole = (typeof PROCESS_ROLES)[number];
export type CpuTimes = Record<ProcessRole, number>;

function clockTicksPerSecond(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
}

interface ProcStat {
  ppid: number;
  /** utime + stime + cutime + cstime: the process, its threads and its waited-for children (ffmpeg). */
  ticks: number;
}

function readStat(pid: number | 'self'): ProcStat | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: the fields after it start past the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    const at = (field: number) => Number(fields[field - 3]);
    return { ppid: at(4), ticks: at(14) + at(15) + at(16) + at(17) };
  } catch {
    return null;
  }
}

function roleOf(pid: number): ProcessRole | null {
  try {
    const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    if (command.includes('redis-server')) return 'redis';
    if (command.includes('apps/api/src/main.js')) return 'api';
    if (command.includes('apps/worker/src/main.js')) return 'worker';
    return null;
  } catch {
    return null;
  }
}

/**
 * CPU time per process from /proc (Linux), read-only, for this process and its direct children only
 * (the stack this bench started). A child's CPU includes its own reaped children: the worker's ffmpeg
 * runs count once they exit, which they all have by the end of a measurement; Redis's AOF rewrites too.
 */
export class CpuMeter {
  private readonly msPerTick = 1000 / clockTicksPerSecond();
  readonly available = readStat('self') !== null;

  snapshot(): CpuTimes {
    const times: CpuTimes = { bench: 0, api: 0, worker: 0, redis: 0 };
    if (!this.available) return times;
    times.bench = (readStat('self')?.ticks ?? 0) * this.msPerTick;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      const stat = readStat(pid);
      if (stat?.ppid !== process.pid) continue;
      const role = roleOf(pid);
      if (role) times[role] += stat.ticks * this.msPerTick;
    }
    return times;
  }

  /** CPU milliseconds each process used while `work` ran. */
  async measure<T>(work: () => Promise<T>): Promise<{ result: T; cpu: CpuTimes }> {
    const before = this.snapshot();
    const result = await work();
    const after = this.snapshot();
    const cpu = { ...after };
    for (const role of PROCESS_ROLES) cpu[role] = Math.max(0, after[role] - before[role]);
    return { result, cpu };
  }
}
