import { execFileSync } from 'node:child_process';
import os from 'node:os';
import sharp from 'sharp';
import { ffmpegBinaries } from '#codecs';
import type { MachineInfo } from './report.js';

function firstLine(binary: string, args: string[]): string {
  try {
    return execFileSync(binary, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\n')[0]
      .trim();
  } catch {
    return 'unavailable';
  }
}

const loadAverage = () => os.loadavg().map((value) => Math.round(value * 100) / 100);

/** What the numbers were measured on; `load_avg_end` is filled in by `finish`. */
export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpus: os.availableParallelism(),
    model: cpus[0]?.model.trim() ?? 'unknown',
    memory_gib: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    node: process.versions.node,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    load_avg_start: loadAverage(),
    load_avg_end: [],
    sharp: `sharp ${sharp.versions.sharp ?? '?'}, libvips ${sharp.versions.vips}`,
    ffmpeg: firstLine(ffmpegBinaries().ffmpeg, ['-hide_banner', '-version']),
    redis: firstLine('redis-server', ['--version']),
  };
}

export function finish(machine: MachineInfo): MachineInfo {
  return { ...machine, load_avg_end: loadAverage() };
}

export function currentLoad(): number {
  return loadAverage()[0];
}
