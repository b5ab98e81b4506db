import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildLiveEncodeArgs,
  ffmpegBinaries,
  normalizeSettings,
  rgbaToPixelFormat,
  RGB_TO_YUV_SCALE_FLAGS,
  syntheticRgba,
} from '#codecs';
import { decodeVideoToRgb, psnr } from '#codecs/testing/media-check.js';
import { rgbaToRgb } from '#codecs/testing/synthetic-frames.js';
import { FRAME_FORMAT, RES_1080P, RES_720P, type Resolution } from './cases.js';

/**
 * `node dist/bench/colour.js [--frames N] [--only FLAGS,FLAGS]`: what the live encoder's RGB -> YUV conversion costs per
 * frame, for each candidate filter, in the node's exact live command (libx264, the API's defaults).
 * For each candidate: the conversion alone (`-vf <filter> -f null`, ffmpeg's CPU time per frame minus
 * that of `-vf null`), the whole live encode's CPU time per frame, and the fidelity of the encoded
 * stream (PSNR of the decoded RGB against the input at quality 90). Not part of `npm run bench`.
 */

interface Candidate {
  name: string;
  /** The `scale=...` (or zscale) part of the live command's -vf, before `,format=`. */
  filter: string;
}

const SCALE = 'scale=out_color_matrix=bt709:out_range=tv:flags=';
const CANDIDATES: Candidate[] = [
  ...[
    'bicubic+accurate_rnd+full_chroma_int',
    'bicubic+accurate_rnd',
    'bicubic',
    'bilinear+accurate_rnd+full_chroma_int',
    'bilinear+accurate_rnd',
    'bilinear',
    'fast_bilinear+accurate_rnd',
    'fast_bilinear',
    'area',
    'neighbor+accurate_rnd',
    'neighbor',
  ].map((flags) => ({ name: `swscale ${flags}`, filter: `${SCALE}${flags}` })),
  { name: 'zscale (zimg)', filter: 'zscale=matrix=709:range=limited' },
];

const SETTINGS = normalizeSettings({ quality: 80, speed: 70, fps: 30 });
const DISTINCT = 8;

function ffmpeg(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(ffmpegBinaries().ffmpeg, args, { maxBuffer: 64 * 1024 * 1024 }, (error, _stdout, stderr) => {
      if (error) reject(new Error(`ffmpeg ${args.join(' ')}: ${stderr.slice(-800)}`));
      else resolve(stderr);
    });
  });
}

/** CPU seconds (user + system) ffmpeg reports with -benchmark. */
function cpuSeconds(stderr: string): number {
  const match = /utime=([\d.]+)s stime=([\d.]+)s/.exec(stderr);
  if (!match) throw new Error(`no -benchmark line in: ${stderr.slice(-400)}`);
  return Number(match[1]) + Number(match[2]);
}

function liveArgs(resolution: Resolution, filter: string, quality: number) {
  const args = buildLiveEncodeArgs({
    codec: 'h264',
    implementation: 'libx264',
    layout: { width: resolution.width, height: resolution.height, format: FRAME_FORMAT },
    settings: { ...SETTINGS, quality },
    threads: 1,
    keyframeInterval: 300,
  });
  const vf = args.output.indexOf('-vf') + 1;
  const current = `${SCALE}${RGB_TO_YUV_SCALE_FLAGS}`;
  const old = args.output[vf];
  const at = old.indexOf('scale=');
  args.output[vf] = old.slice(0, at) + filter + old.slice(old.indexOf(',format=', at));
  if (filter === current && args.output[vf] !== old)
    throw new Error('live -vf is not what the bench expects');
  return args;
}

/** The live input options without those that would hide -benchmark's line (added back by `input`). */
function quiet(args: string[]): string[] {
  const loglevel = args.indexOf('-loglevel');
  return args.filter(
    (word, i) => !['-hide_banner', '-nostats'].includes(word) && i !== loglevel && i !== loglevel + 1,
  );
}

/** The least of `runs` measurements: on a shared machine, the one least disturbed by other work. */
async function least(runs: number, measure: () => Promise<number>): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < runs; i++) best = Math.min(best, await measure());
  return best;
}

async function main() {
  const framesArg = process.argv.indexOf('--frames');
  const frames = framesArg > 0 ? Number(process.argv[framesArg + 1]) : 120;
  const runs = 5;
  const onlyArg = process.argv.indexOf('--only');
  const only = onlyArg > 0 ? process.argv[onlyArg + 1].split(',') : [];
  const candidates = CANDIDATES.filter(
    (candidate) => only.length === 0 || only.some((name) => candidate.name === `swscale ${name}`),
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'colour-bench-'));
  const rows: string[] = [];
  try {
    for (const resolution of [RES_720P, RES_1080P]) {
      const rgba = Array.from({ length: DISTINCT }, (_, i) =>
        syntheticRgba(resolution.width, resolution.height, i),
      );
      const file = path.join(dir, `${resolution.label}.raw`);
      writeFileSync(file, Buffer.concat(rgba.map((frame) => rgbaToPixelFormat(frame, FRAME_FORMAT))));
      const expected = Buffer.concat(rgba.map(rgbaToRgb));
      const loops = Math.ceil(frames / DISTINCT) - 1;
      const input = (args: string[]) => [
        '-hide_banner',
        '-nostats',
        '-benchmark',
        ...args,
        '-stream_loop',
        String(loops),
        '-i',
        file,
      ];
      const rawInput = quiet(liveArgs(resolution, `${SCALE}bicubic`, 80).input);
      const convert = (filter: string) =>
        least(runs, async () =>
          cpuSeconds(
            await ffmpeg([...input(rawInput), '-vf', filter, '-frames:v', String(frames), '-f', 'null', '-']),
          ),
        );
      const baseline = await convert('null');
      for (const candidate of candidates) {
        const pixFmt = 'format=yuv420p';
        const conversion = (await convert(`${candidate.filter},${pixFmt}`)) - baseline;
        const live = liveArgs(resolution, candidate.filter, 80);
        const encode = await least(runs, async () =>
          cpuSeconds(
            await ffmpeg([
              ...input(quiet(live.input)),
              ...live.output,
              '-frames:v',
              String(frames),
              '-y',
              path.join(dir, 'out.avi'),
            ]),
          ),
        );
        const fidelityArgs = liveArgs(resolution, candidate.filter, 90);
        const out = path.join(dir, 'fidelity.avi');
        await ffmpeg([...fidelityArgs.input, '-i', file, ...fidelityArgs.output, '-y', out]);
        const quality = psnr(expected, await decodeVideoToRgb(readFileSync(out)));
        const row = `| ${resolution.label} | ${candidate.name} | ${((conversion / frames) * 1000).toFixed(2)} | ${((encode / frames) * 1000).toFixed(2)} | ${quality.toFixed(2)} |`;
        rows.push(row);
        console.log(row);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `\n${frames} frames of ${FRAME_FORMAT}, least of ${runs} runs (CPU: user + system), load average ${os
      .loadavg()
      .map((v) => v.toFixed(1))
      .join(' ')}`,
  );
  console.log('| res | filter | conversion CPU ms/frame | live encode CPU ms/frame | PSNR q90 dB |');
  console.log('| --- | ------ | ----------------------: | -----------------------: | ----------: |');
  for (const row of rows) console.log(row);
}

await main();
