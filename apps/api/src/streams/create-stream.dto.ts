import { ApiPropertyOptional, OmitType, PickType } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { STREAM_MODES, type StreamMode } from '../../../../libs/contracts/src/index.js';
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
}

/** `POST /v1/streams/:id/frames` query: how many frames the body holds (the layout is the stream's). */
export class StreamFramesQuery extends PickType(CreateJobQuery, ['frames'] as const) {}
