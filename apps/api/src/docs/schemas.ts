import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import {
  CODECS,
  JOB_STATUSES,
  ODD_SIZE_POLICIES,
  PIXEL_FORMATS,
  SESSION_COMPRESSIONS,
  STREAM_MODES,
  type Codec,
  type JobStatus,
  type JobTimings,
  type JobView,
  type LiveSessionGrant,
  type NodeRecord,
  type OddSizePolicy,
  type PixelFormat,
  type Pool,
  type SessionCompression,
  type StreamLinks,
  type StreamMode,
  type StreamState,
  type StreamView,
} from '#contracts';
import type { AcceptedJob } from '../submission/submission-pipeline.js';

// Response shapes for the OpenAPI document. The API returns the contracts' interfaces; these classes
// `implement` them, so the compiler keeps the documentation in step with what is actually sent.

const POOL_VALUES = ['cpu', 'gpu'];

const OUTPUT_WIDTH_DESCRIPTION =
  'only when the pictures in the output are not width x height: H.264/HEVC with oddSize=pad at an odd size, coded at the next even size (crop back to width x height)';

export class ErrorDto {
  @ApiProperty({ example: 400 })
  statusCode!: number;

  @ApiProperty({ example: 'Bad Request' })
  error!: string;

  @ApiProperty({ example: 'width is required; format is required (pixel layout of the raw bytes)' })
  message!: string;
}

export class JobLinksDto {
  @ApiProperty({ example: '/v1/jobs/q1w2e3r4t5y6u7i8' })
  self!: string;

  @ApiProperty({ example: '/v1/jobs/q1w2e3r4t5y6u7i8/events' })
  events!: string;

  @ApiProperty({ example: '/v1/jobs/q1w2e3r4t5y6u7i8/outputs/0' })
  output!: string;
}

export class AcceptedJobDto implements AcceptedJob {
  @ApiProperty({ example: 'q1w2e3r4t5y6u7i8', description: '16 url-safe characters' })
  id!: string;

  @ApiProperty({ enum: ['queued'], example: 'queued' })
  status!: 'queued';

  @ApiProperty({
    enum: CODECS,
    example: 'jpeg',
    description: 'the codec chosen (first of `accept` the cluster can encode)',
  })
  codec!: Codec;

  @ApiProperty({ enum: POOL_VALUES, example: 'cpu' })
  pool!: string;

  @ApiProperty({ example: 3 })
  frames!: number;

  @ApiPropertyOptional({ example: 322, description: OUTPUT_WIDTH_DESCRIPTION })
  outputWidth?: number;

  @ApiPropertyOptional({ example: 182, description: 'as outputWidth' })
  outputHeight?: number;

  @ApiProperty({ type: JobLinksDto })
  links!: JobLinksDto;
}

export class OutputDto {
  @ApiProperty({ example: 0 })
  index!: number;

  @ApiProperty({ example: 'image/jpeg' })
  contentType!: string;

  @ApiProperty({ example: 48213 })
  bytes!: number;

  @ApiProperty({ example: '/v1/jobs/q1w2e3r4t5y6u7i8/outputs/0' })
  url!: string;
}

export class JobTimingsDto implements JobTimings {
  @ApiProperty({ example: 12 })
  queueWaitMs!: number;

  @ApiProperty({ example: 4 })
  fetchMs!: number;

  @ApiProperty({ example: 31 })
  encodeMs!: number;

  @ApiProperty({ example: 3 })
  storeOutputMs!: number;
}

export class JobViewDto implements JobView {
  @ApiProperty({ example: 'q1w2e3r4t5y6u7i8' })
  id!: string;

  @ApiProperty({ enum: JOB_STATUSES, example: 'completed' })
  status!: JobStatus;

  @ApiProperty({ enum: CODECS, example: 'jpeg' })
  codec!: Codec;

  @ApiProperty({ enum: POOL_VALUES, example: 'cpu' })
  pool!: Pool;

  @ApiProperty({ example: 3 })
  frames!: number;

  @ApiProperty({ example: 1920 })
  width!: number;

  @ApiProperty({ example: 1080 })
  height!: number;

  @ApiProperty({ enum: Object.keys(PIXEL_FORMATS), example: 'bgra' })
  format!: PixelFormat;

  @ApiPropertyOptional({ example: 322, description: OUTPUT_WIDTH_DESCRIPTION })
  outputWidth?: number;

  @ApiPropertyOptional({ example: 182, description: 'as outputWidth' })
  outputHeight?: number;

  @ApiProperty({ example: 1, description: '0 to 1' })
  progress!: number;

  @ApiProperty({ type: String, nullable: true, example: 'node-a' })
  node!: string | null;

  @ApiProperty({ example: 1 })
  attempts!: number;

  @ApiProperty({ format: 'date-time', example: '2025-01-01T12:00:00.000Z' })
  createdAt!: string;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2025-01-01T12:00:00.020Z' })
  startedAt!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2025-01-01T12:00:00.090Z' })
  finishedAt!: string | null;

  @ApiProperty({ type: String, nullable: true, example: null })
  error!: string | null;

  @ApiProperty({ type: [OutputDto] })
  outputs!: OutputDto[];

  @ApiPropertyOptional({ type: JobTimingsDto, description: 'present once the job completed' })
  timings?: JobTimingsDto;
}

export class NodeDto implements NodeRecord {
  @ApiProperty({ example: '5b0c3c1e-8a1f-4d0e-9a55-2f1f2d3c4b5a' })
  id!: string;

  @ApiProperty({ example: 'node-a' })
  name!: string;

  @ApiProperty({ example: 'encoder-1' })
  host!: string;

  @ApiProperty({ example: 4242 })
  pid!: number;

  @ApiProperty({ enum: POOL_VALUES, example: 'cpu' })
  pool!: Pool;

  @ApiProperty({ enum: CODECS, isArray: true, example: ['jpeg', 'webp', 'png', 'h264'] })
  codecs!: Codec[];

  @ApiProperty({ type: [String], example: [] })
  hardware!: string[];

  @ApiProperty({ enum: CODECS, isArray: true, example: [], description: 'codecs taken from the gpu queue' })
  gpuCodecs!: Codec[];

  @ApiProperty({ example: 2 })
  concurrency!: number;

  @ApiProperty({ example: 1 })
  active!: number;

  @ApiProperty({ example: 120 })
  processed!: number;

  @ApiProperty({ example: 0 })
  failed!: number;

  @ApiProperty({ example: 57.5, description: 'frames encoded per second over the last minute' })
  encodeFps!: number;

  @ApiPropertyOptional({
    example: 1,
    description: 'live streams with a running encoder context (ffmpeg) here',
  })
  liveStreams?: number;

  @ApiPropertyOptional({
    example: 8,
    description: 'most live encoder contexts this node keeps; no new live stream is placed on it past this',
  })
  liveCapacity?: number;

  @ApiPropertyOptional({ example: 30000, description: 'a live encoder context idle this long is closed' })
  liveIdleTimeoutMs?: number;

  @ApiPropertyOptional({
    example: 2,
    description:
      'with XPRA_BIND: the Xpra video contexts of this API instance whose live stream this node holds (each also counts in liveStreams)',
  })
  xpraContexts?: number;

  @ApiPropertyOptional({
    example: 'ws://10.0.0.5:7000',
    description:
      "the node's data port for live sessions (ws:// or wss://, from --bind/--advertise); absent when it has none",
  })
  dataUrl?: string;

  @ApiProperty({ example: '0.1.0' })
  version!: string;

  @ApiProperty({ format: 'date-time' })
  startedAt!: string;

  @ApiProperty({ format: 'date-time' })
  lastSeen!: string;
}

export class CodecsByPoolDto {
  @ApiProperty({ enum: CODECS, isArray: true, example: ['avif', 'h264', 'jpeg', 'png', 'webp'] })
  cpu!: Codec[];

  @ApiProperty({ enum: CODECS, isArray: true, example: [] })
  gpu!: Codec[];
}

export class CodecsDto {
  @ApiProperty({ type: CodecsByPoolDto })
  pools!: CodecsByPoolDto;

  @ApiPropertyOptional({
    type: CodecsByPoolDto,
    description:
      'With POOL_CODECS: what each pool is configured to serve when none of its nodes is alive (a job for these is queued for a node to start)',
  })
  configured?: CodecsByPoolDto;
}

export class LiveSessionGrantDto implements LiveSessionGrant {
  @ApiProperty({
    example: 'ws://10.0.0.5:7000/v1/streams/sN2l0c3RyZWFtMDAx/session',
    description: "WebSocket of the session on the pinned node's data port",
  })
  url!: string;

  @ApiProperty({
    example: 's1.eyJzdHJlYW0iOiJzTjJsMGMzUnlaV0Z0TURBeCIsIm5vZGUiOiI1YjBjIiwiZXBvY2giOjAsImV4cCI6MH0.c2ln',
    description:
      'session token: `Authorization: Bearer <token>` (or `?token=`) on `url`; good for this stream on this node at this epoch, until expiresAt',
  })
  token!: string;

  @ApiProperty({
    format: 'date-time',
    description: 'an open socket is not closed then; a reconnect needs a fresh token',
  })
  expiresAt!: string;

  @ApiProperty({
    example: '5b0c3c1e-8a1f-4d0e-9a55-2f1f2d3c4b5a',
    description: 'the node the grant is for: the value to report in `?unreachable=`',
  })
  node!: string;

  @ApiProperty({
    example: 'ws://127.0.0.1:3000/v1/streams/sN2l0c3RyZWFtMDAx/session',
    description: "the API's relay of the same session (authenticated with the API key, not the token)",
  })
  relayUrl!: string;
}

export class StreamLinksDto implements StreamLinks {
  @ApiProperty({ example: '/v1/streams/sN2l0c3RyZWFtMDAx' })
  self!: string;

  @ApiProperty({ example: '/v1/streams/sN2l0c3RyZWFtMDAx/frames' })
  frames!: string;

  @ApiProperty({ example: '/v1/streams/sN2l0c3RyZWFtMDAx/events' })
  events!: string;

  @ApiProperty({ example: '/v1/streams/sN2l0c3RyZWFtMDAx/ws' })
  ws!: string;
}

export class StreamViewDto implements StreamView {
  @ApiProperty({ example: 'sN2l0c3RyZWFtMDAx' })
  id!: string;

  @ApiProperty({ enum: CODECS, example: 'h264' })
  codec!: Codec;

  @ApiProperty({ enum: STREAM_MODES, example: 'live' })
  mode!: StreamMode;

  @ApiProperty({ enum: POOL_VALUES, example: 'cpu' })
  pool!: Pool;

  @ApiProperty({ enum: ['open', 'closed', 'ended'], example: 'open' })
  state!: StreamState;

  @ApiProperty({ example: 1280 })
  width!: number;

  @ApiProperty({ example: 720 })
  height!: number;

  @ApiProperty({ enum: PIXEL_FORMATS, example: 'bgra' })
  format!: PixelFormat;

  @ApiProperty({ example: 80 })
  quality!: number;

  @ApiProperty({ example: 70 })
  speed!: number;

  @ApiProperty({ example: 30 })
  fps!: number;

  @ApiProperty({ example: 300 })
  keyframeInterval!: number;

  @ApiProperty({ enum: ODD_SIZE_POLICIES, example: 'exact' })
  oddSize!: OddSizePolicy;

  @ApiProperty({
    enum: SESSION_COMPRESSIONS,
    example: 'none',
    description: "how a live session's frame messages are sent (none for batch streams)",
  })
  compression!: SessionCompression;

  @ApiPropertyOptional({ example: 1281, description: OUTPUT_WIDTH_DESCRIPTION })
  outputWidth?: number;

  @ApiPropertyOptional({ example: 721 })
  outputHeight?: number;

  @ApiProperty({ example: 0, description: 'batches acknowledged' })
  batches!: number;

  @ApiProperty({ example: 0, description: 'batches delivered, in order' })
  delivered!: number;

  @ApiProperty({
    example: 0,
    description: 'frames acknowledged (POST /frames and session frames: one counter)',
  })
  frames!: number;

  @ApiProperty({ example: 0, description: 'id of the last event in the log' })
  lastEventId!: number;

  @ApiProperty({ type: String, nullable: true, example: '5b0c3c1e-8a1f-4d0e-9a55-2f1f2d3c4b5a' })
  node!: string | null;

  @ApiProperty({ format: 'date-time' })
  createdAt!: string;

  @ApiProperty({ type: StreamLinksDto })
  links!: StreamLinksDto;

  @ApiPropertyOptional({
    type: LiveSessionGrantDto,
    description:
      'live mode, while the stream is open and its node has a data port: where to send frames directly (docs/api.md, Live sessions)',
  })
  session?: LiveSessionGrantDto;
}
