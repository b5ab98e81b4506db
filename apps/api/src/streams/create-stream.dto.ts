import { ApiPropertyOptional, OmitType, PickType } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Matches, Max, Min } from 'class-validator';
import { SESSION_COMPRESSIONS, STREAM_MODES, type SessionCompression, type StreamMode } from '#contracts';
import { DecimalInteger } from '../common/validation.js';
import { CreateJobQuery } from '../jobs/create-job.query.js';

export const MAX_KEYFRAME_INTERVAL = 100_000;

/** `POST /v1/streams`: the encoding parameters of a job, fixed for the stream, plus its mode. */
export class CreateStreamBody extends OmitType(CreateJobQuery, ['frames', 'priority'] as const) {
  @ApiPropertyOptional({
    enum: STREAM_MODES,
    default: 'batch',
    description:
      'batch: each batch self-contained, encoded in parallel; live: pinned to one node that keeps its encoder running (video codecs)',
  })
  @IsOptional()
  @IsIn(STREAM_MODES, { message: `mode must be one of ${STREAM_MODES.join(', ')}` })
  mode: StreamMode = 'batch';

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: MAX_KEYFRAME_INTERVAL,
    description: 'live video: frames between keyframes (default: 10 seconds of frames)',
  })
  @IsOptional()
  @DecimalInteger()
  @IsInt({ message: `keyframeInterval must be an integer from 1 to ${MAX_KEYFRAME_INTERVAL}` })
  @Min(1, { message: `keyframeInterval must be an integer from 1 to ${MAX_KEYFRAME_INTERVAL}` })
  @Max(MAX_KEYFRAME_INTERVAL, {
    message: `keyframeInterval must be an integer from 1 to ${MAX_KEYFRAME_INTERVAL}`,
  })
  keyframeInterval?: number;

  @ApiPropertyOptional({
    enum: SESSION_COMPRESSIONS,
    default: 'none',
    description:
      'live mode: how each frame message of a live session is sent: none (the raw frame) or lz4 (a little-endian u32 of the raw size, then one LZ4 block, as Xpra sends)',
  })
  @IsOptional()
  @IsIn(SESSION_COMPRESSIONS, { message: `compression must be one of ${SESSION_COMPRESSIONS.join(', ')}` })
  compression: SessionCompression = 'none';
}

/** Node ids as the registry has them (UUIDs; any id of these characters is looked up). */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/** `GET /v1/streams/:id` query. */
export class StreamViewQuery {
  @ApiPropertyOptional({
    description:
      "live mode: the node of the stream's session that the client cannot reach (its socket dropped, or a frame got no output in time). The API probes that node's data port and, if it does not answer, moves the stream to another node at once; the answer carries the new session",
  })
  @IsOptional()
  @Matches(NODE_ID_PATTERN, {
    message:
      "unreachable must be a node id (the session's `node`): 1-128 letters, digits, '_', '.', ':' or '-'",
  })
  unreachable?: string;
}

/** `POST /v1/streams/:id/frames` query: how many frames the body holds (the layout is the stream's). */
export class StreamFramesQuery extends PickType(CreateJobQuery, ['frames'] as const) {}
