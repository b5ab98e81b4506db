import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  CODECS,
  PIXEL_FORMATS,
  POOLS,
  STREAM_MODES,
  isCodec,
  isPixelFormat,
  type Codec,
  type PixelFormat,
  type PoolPreference,
  type StreamMode,
} from '#contracts';
import { DEFAULT_API_URL, parseEndpoints, type EndpointSpec } from './endpoints.js';
import { UPLOAD_COMPRESSIONS, type UploadCompression } from './raw-upload.js';

/** A command line that does not fit: the CLI prints the message and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const MAIN_HELP = `Usage: npm run client -- <command> [options]
       node dist/libs/client/src/cli.js <command> [options]

Commands:
  stream              create a stream, send frames to it and write its outputs as they come, in order
  follow <streamId>   follow an existing stream and write its outputs
  job                 encode one batch of frames as a one-off job and write its outputs
  nodes               list the live encoder nodes

Run "<command> --help" for the options of a command.

Options of every command:
  --api <servers>     API server list (env ENCODER_API, default ${DEFAULT_API_URL}):
                      URL[,timeout=S][,reconnect-delay=S][;URL...], e.g.
                      "http://a:3000/,timeout=5;http://b:3000/,timeout=10,reconnect-delay=2"
                      timeout: connect/request/health-check timeout in seconds (default 5);
                      reconnect-delay: first backoff after a failure in seconds (default 1, doubling
                      per consecutive failure up to 30). Requests fail over to the next healthy server.
  --api-key <key>     API key, sent as "Authorization: Bearer <key>" (env API_KEY)
  --retry-for <s>     how long a request, or a lost event stream, keeps failing over (default 60)
  -h, --help          this help

Exit status: 0 on success, 1 when the work failed, 2 for a command line that does not fit.
`;

const SOURCE_HELP = `Frames (exactly one):
  --input <file>          raw frames, concatenated (width*height*bytes-per-pixel each); needs --width, --height
  --images <files...>     PNG/JPEG/WebP/... images, all of the same size (decoded with sharp)
  --synthetic <frames>    a moving desktop-like test pattern (default size 640x360)
  --width <px> --height <px>
  --format <f>            pixel format of the frames sent: ${Object.keys(PIXEL_FORMATS).join(' | ')} (default rgba;
                          --images and --synthetic are converted to it)`;

export const STREAM_HELP = `Usage: npm run client -- stream (--codec <codec> | --accept <list>) <frames> [options]

Creates a stream, sends the frames in batches while it follows the stream's events, writes the
outputs in delivery order, closes the stream and prints one JSON summary line on stdout:
  { streamId, codec, mode, frames, batches, outputs, bytes, seconds, fps, latencyMs: { p50, p99 },
    keyframes, failovers }   (latency: per batch, from its submit call to its last output event)

Encoding:
  --codec <codec>         ${CODECS.join(' | ')}
  --accept <list>         comma list of codecs in order of preference, the server picks
  --mode <mode>           batch (default): self-contained batches, encoded in parallel on any node;
                          live: pinned to one node, real inter-frame video, one packet per frame
  --fps <n>               frame rate (default 30)
  --quality <0-100>       --speed <0-100>
  --pool <pool>           ${POOLS.join(' | ')}
  --keyframe-interval <n> live video: frames between keyframes

${SOURCE_HELP}

Sending:
  --batch <frames>        frames per batch (default 1; POST only)
  --realtime              pace the batches at --fps instead of sending as fast as the API takes them

Live streams (--mode live) send their frames over the stream's session by default: one WebSocket
straight to the node that encodes it, as many frames in flight as the node's window allows, each
packet back on the same socket; if the node dies or stops answering, the client moves the stream
to another node by itself (API.md, "Live sessions").
  --via-api               the session through the API's relay (for clients that cannot reach nodes)
  --via-post              POST /v1/streams/:id/frames and the stream's WebSocket instead (durable path)
  --frame-timeout <ms>    a frame without its output for this long means the node is gone (default 500)

Receiving:
  --out <dir>             write the outputs: live H.264/HEVC -> stream.h264 / stream.h265 (Annex B),
                          live VP8/VP9/AV1 -> stream.ivf, batch-mode video -> batch-000000.mp4|webm
                          per batch, images -> frame-000000.jpg etc. by frame number
  --sse                   follow over Server-Sent Events and fetch each output (default: WebSocket,
                          bytes inline)
  --progress              show the progress bar even when stderr is not a terminal

Options of every command: --api, --api-key, --retry-for (see --help).
`;

export const FOLLOW_HELP = `Usage: npm run client -- follow <streamId> [options]

Follows an existing stream's events until its end, writes the outputs and prints a JSON summary.
  --since <id>            start after this event id (default 0: from the first event)
  --out <dir>             write the outputs (same files as "stream --out")
  --sse                   Server-Sent Events instead of the WebSocket
  --progress              show the progress bar even when stderr is not a terminal

Options of every command: --api, --api-key, --retry-for (see --help).
`;

export const JOB_HELP = `Usage: npm run client -- job (--codec <codec> | --accept <list>) <frames> [options]

Encodes one batch of frames as a one-off job (POST /v1/jobs), waits for it, writes its outputs
(images: frame-000000.jpg ...; video: output-0.mp4 ...) and prints a JSON summary.
  --codec <codec> | --accept <list>
  --fps <n> --quality <0-100> --speed <0-100> --pool <pool> --priority <n>

${SOURCE_HELP.replace('(decoded with sharp)', '(sent as they are, multipart)')}

  --compression <c>       raw frames: lz4 (default: one LZ4 block per frame, Content-Encoding lz4-block)
                          or none (sent as they are)
  --out <dir>             where to write the outputs (default: not written)

Options of every command: --api, --api-key, --retry-for (see --help).
`;

export const NODES_HELP = `Usage: npm run client -- nodes [--json]

Lists the live encoder nodes (GET /v1/nodes) as a table, or as JSON with --json.

Options of every command: --api, --api-key, --retry-for (see --help).
`;

export interface CommonOptions {
  endpoints: EndpointSpec[];
  apiKey?: string;
  retryForMs: number;
}

export type FrameSourceSpec =
  | { kind: 'input'; file: string }
  | { kind: 'images'; files: string[] }
  | { kind: 'synthetic'; frames: number };

export interface EncodingOptions {
  codec?: Codec;
  accept?: string;
  fps: number;
  quality?: number;
  speed?: number;
  pool?: PoolPreference;
}

export interface StreamCommand extends CommonOptions, EncodingOptions {
  command: 'stream';
  mode: StreamMode;
  keyframeInterval?: number;
  source: FrameSourceSpec;
  width?: number;
  height?: number;
  format: PixelFormat;
  batch: number;
  realtime: boolean;
  out?: string;
  transport: 'ws' | 'sse';
  progress: boolean;
  /** Live streams: the session straight to the node, through the API's relay, or POST /frames. */
  live: 'direct' | 'relay' | 'post';
  frameTimeoutMs?: number;
}

export interface FollowCommand extends CommonOptions {
  command: 'follow';
  streamId: string;
  since: number;
  out?: string;
  transport: 'ws' | 'sse';
  progress: boolean;
}

export interface JobCommand extends CommonOptions, EncodingOptions {
  command: 'job';
  source: FrameSourceSpec;
  width?: number;
  height?: number;
  format: PixelFormat;
  priority?: number;
  compression: UploadCompression;
  out?: string;
}

export interface NodesCommand extends CommonOptions {
  command: 'nodes';
  json: boolean;
}

export interface HelpCommand {
  command: 'help';
  text: string;
}

export type CliCommand = StreamCommand | FollowCommand | JobCommand | NodesCommand | HelpCommand;

type Options = NonNullable<ParseArgsConfig['options']>;

const COMMON: Options = {
  api: { type: 'string' },
  'api-key': { type: 'string' },
  'retry-for': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const ENCODING: Options = {
  codec: { type: 'string' },
  accept: { type: 'string' },
  fps: { type: 'string' },
  quality: { type: 'string' },
  speed: { type: 'string' },
  pool: { type: 'string' },
};

const SOURCE: Options = {
  input: { type: 'string' },
  images: { type: 'string', multiple: true },
  synthetic: { type: 'string' },
  width: { type: 'string' },
  height: { type: 'string' },
  format: { type: 'string' },
};

const COMMAND_OPTIONS: Record<'stream' | 'follow' | 'job' | 'nodes', Options> = {
  stream: {
    ...COMMON,
    ...ENCODING,
    ...SOURCE,
    mode: { type: 'string' },
    'keyframe-interval': { type: 'string' },
    batch: { type: 'string' },
    realtime: { type: 'boolean' },
    out: { type: 'string' },
    sse: { type: 'boolean' },
    progress: { type: 'boolean' },
    'via-api': { type: 'boolean' },
    'via-post': { type: 'boolean' },
    'frame-timeout': { type: 'string' },
  },
  follow: {
    ...COMMON,
    since: { type: 'string' },
    out: { type: 'string' },
    sse: { type: 'boolean' },
    progress: { type: 'boolean' },
  },
  job: {
    ...COMMON,
    ...ENCODING,
    ...SOURCE,
    priority: { type: 'string' },
    compression: { type: 'string' },
    out: { type: 'string' },
  },
  nodes: { ...COMMON, json: { type: 'boolean' } },
};

const HELP: Record<keyof typeof COMMAND_OPTIONS, string> = {
  stream: STREAM_HELP,
  follow: FOLLOW_HELP,
  job: JOB_HELP,
  nodes: NODES_HELP,
};

type Values = Record<string, string | boolean | string[] | undefined>;

function str(values: Values, name: string): string | undefined {
  const value = values[name];
  return typeof value === 'string' ? value : undefined;
}

/** A number option: finite, an integer unless `integer: false`, above 0 with `positive`, within [min, max]. */
export function numberOption(
  name: string,
  text: string | undefined,
  limits: { min?: number; max?: number; positive?: boolean; integer?: boolean } = {},
): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  const { min = -Infinity, max = Infinity, positive = false, integer = true } = limits;
  const bounds: string[] = [];
  if (positive) bounds.push('above 0');
  else if (min > -Infinity && max < Infinity) bounds.push(`from ${min} to ${max}`);
  else if (min > -Infinity) bounds.push(min === 0 ? '0 or more' : `at least ${min}`);
  if (max < Infinity && (positive || min === -Infinity)) bounds.push(`at most ${max}`);
  const ok =
    text.trim() !== '' &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (!positive || value > 0) &&
    value >= min &&
    value <= max;
  if (!ok) {
    const range = bounds.length > 0 ? ` ${bounds.join(' and ')}` : '';
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}${range}, got "${text}"`);
  }
  return value;
}

function common(values: Values, env: Record<string, string | undefined>): CommonOptions {
  const list = str(values, 'api') ?? env.ENCODER_API ?? DEFAULT_API_URL;
  let endpoints: EndpointSpec[];
  try {
    endpoints = parseEndpoints(list);
  } catch (error) {
    throw new UsageError(`--api: ${(error as Error).message}`);
  }
  const retryFor =
    numberOption('retry-for', str(values, 'retry-for'), { positive: true, integer: false }) ?? 60;
  const apiKey = str(values, 'api-key') ?? env.API_KEY;
  return { endpoints, apiKey: apiKey || undefined, retryForMs: Math.round(retryFor * 1000) };
}

function compressionOption(value: string | undefined): UploadCompression {
  if (value === undefined) return 'lz4';
  if (!(UPLOAD_COMPRESSIONS as readonly string[]).includes(value)) {
    throw new UsageError(`--compression ${value}: use one of ${UPLOAD_COMPRESSIONS.join(', ')}`);
  }
  return value as UploadCompression;
}

function encoding(values: Values): EncodingOptions {
  const codec = str(values, 'codec');
  const accept = str(values, 'accept');
  if (codec !== undefined && accept !== undefined) {
    throw new UsageError('give --codec or --accept, not both');
  }
  if (codec === undefined && accept === undefined) {
    throw new UsageError(`give --codec (${CODECS.join(' | ')}) or --accept <comma list of codecs>`);
  }
  if (codec !== undefined && !isCodec(codec)) {
    throw new UsageError(`--codec ${codec} is not a codec: use one of ${CODECS.join(', ')}`);
  }
  if (accept !== undefined) {
    const list = accept.split(',').map((item) => item.trim());
    const wrong = list.filter((item) => !isCodec(item));
    if (list.length === 0 || wrong.length > 0) {
      throw new UsageError(
        `--accept ${accept}: ${wrong.map((item) => `"${item}"`).join(', ')} is not a codec: use a comma list of ${CODECS.join(', ')}`,
      );
    }
  }
  const pool = str(values, 'pool');
  if (pool !== undefined && !(POOLS as readonly string[]).includes(pool)) {
    throw new UsageError(`--pool ${pool} is not a pool: use one of ${POOLS.join(', ')}`);
  }
  return {
    codec: codec as Codec | undefined,
    accept: accept
      ?.split(',')
      .map((item) => item.trim())
      .join(','),
    fps: numberOption('fps', str(values, 'fps'), { positive: true, max: 1000, integer: false }) ?? 30,
    quality: numberOption('quality', str(values, 'quality'), { min: 0, max: 100 }),
    speed: numberOption('speed', str(values, 'speed'), { min: 0, max: 100 }),
    pool: pool as PoolPreference | undefined,
  };
}

function source(
  values: Values,
  positionals: string[],
): { source: FrameSourceSpec; width?: number; height?: number; format: PixelFormat } {
  const images = [...((values.images as string[] | undefined) ?? [])];
  if (images.length > 0) images.push(...positionals);
  else if (positionals.length > 0) {
    throw new UsageError(`unexpected argument "${positionals[0]}" (image files go after --images)`);
  }
  const given = [
    str(values, 'input') !== undefined && '--input',
    images.length > 0 && '--images',
    str(values, 'synthetic') !== undefined && '--synthetic',
  ].filter(Boolean);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? 'give the frames: --input <raw file>, --images <files...> or --synthetic <frames>'
        : `give one frame source, not ${given.join(' and ')}`,
    );
  }
  const format = str(values, 'format') ?? 'rgba';
  if (!isPixelFormat(format)) {
    throw new UsageError(
      `--format ${format} is not a pixel format: use one of ${Object.keys(PIXEL_FORMATS).join(', ')}`,
    );
  }
  const width = numberOption('width', str(values, 'width'), { positive: true, max: 16384 });
  const height = numberOption('height', str(values, 'height'), { positive: true, max: 16384 });
  const input = str(values, 'input');
  if (input !== undefined) {
    if (width === undefined || height === undefined) {
      throw new UsageError('--input needs --width and --height (and --format unless the frames are rgba)');
    }
    return { source: { kind: 'input', file: input }, width, height, format };
  }
  if (images.length > 0) {
    if (width !== undefined || height !== undefined) {
      throw new UsageError('--images takes the size from the images: leave out --width and --height');
    }
    return { source: { kind: 'images', files: images }, format };
  }
  const frames = numberOption('synthetic', str(values, 'synthetic'), { positive: true }) as number;
  return { source: { kind: 'synthetic', frames }, width: width ?? 640, height: height ?? 360, format };
}

/** Parses the command line (without `node cli.js`); throws UsageError when it does not fit. */
export function parseCli(argv: string[], env: Record<string, string | undefined> = {}): CliCommand {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    return { command: 'help', text: MAIN_HELP };
  }
  if (!Object.prototype.hasOwnProperty.call(COMMAND_OPTIONS, command)) {
    throw new UsageError(`unknown command "${command}": use stream, follow, job or nodes (see --help)`);
  }
  const name = command as keyof typeof COMMAND_OPTIONS;
  let parsed: { values: Values; positionals: string[] };
  try {
    parsed = parseArgs({
      args: rest,
      options: COMMAND_OPTIONS[name],
      allowPositionals: true,
      strict: true,
    }) as {
      values: Values;
      positionals: string[];
    };
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]} (see "${name} --help")`);
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: 'help', text: HELP[name] };
  const base = common(values, env);
  switch (name) {
    case 'stream': {
      const mode = str(values, 'mode') ?? 'batch';
      if (!(STREAM_MODES as readonly string[]).includes(mode)) {
        throw new UsageError(`--mode ${mode} is not a mode: use batch or live`);
      }
      const viaApi = values['via-api'] === true;
      const viaPost = values['via-post'] === true;
      if (viaApi && viaPost) throw new UsageError('give --via-api or --via-post, not both');
      if ((viaApi || viaPost) && mode !== 'live') {
        throw new UsageError(
          `--via-api and --via-post choose how a live stream's frames go: add --mode live`,
        );
      }
      return {
        command: 'stream',
        ...base,
        ...encoding(values),
        ...source(values, positionals),
        mode: mode as StreamMode,
        keyframeInterval: numberOption('keyframe-interval', str(values, 'keyframe-interval'), {
          positive: true,
        }),
        batch: numberOption('batch', str(values, 'batch'), { positive: true }) ?? 1,
        realtime: values.realtime === true,
        out: str(values, 'out'),
        transport: values.sse ? 'sse' : 'ws',
        progress: values.progress === true,
        live: viaApi ? 'relay' : viaPost ? 'post' : 'direct',
        frameTimeoutMs: numberOption('frame-timeout', str(values, 'frame-timeout'), {
          positive: true,
          max: 600_000,
        }),
      };
    }
    case 'follow': {
      if (positionals.length !== 1) {
        throw new UsageError(
          positionals.length === 0
            ? 'follow needs the stream id: follow <streamId>'
            : `follow takes one stream id, got ${positionals.length}`,
        );
      }
      return {
        command: 'follow',
        ...base,
        streamId: positionals[0],
        since: numberOption('since', str(values, 'since'), { min: 0 }) ?? 0,
        out: str(values, 'out'),
        transport: values.sse ? 'sse' : 'ws',
        progress: values.progress === true,
      };
    }
    case 'job':
      return {
        command: 'job',
        ...base,
        ...encoding(values),
        ...source(values, positionals),
        priority: numberOption('priority', str(values, 'priority')),
        compression: compressionOption(str(values, 'compression')),
        out: str(values, 'out'),
      };
    case 'nodes':
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
      return { command: 'nodes', ...base, json: values.json === true };
  }
}
