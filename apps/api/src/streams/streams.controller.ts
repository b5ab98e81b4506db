import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Inject,
  Param,
  Post,
  Query,
  Req,
  Res,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import type { AcceptedBatch, StreamView } from '#contracts';
import type { Principal } from '../auth/key-ring.js';
import { Caller } from '../auth/tenancy.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { validateParams } from '../common/validation.js';
import { AdmitsWork } from '../submission/admission.guard.js';
import { Idempotent } from '../submission/idempotency.interceptor.js';
import { SubmissionPipeline } from '../submission/submission-pipeline.js';
import { contentLengthOf, uploadKindOf } from '../submission/upload-kind.js';
import { EventDelivery } from '../delivery/event-delivery.js';
import { resumePositionOf } from '../delivery/event-ids.js';
import {
  ApiCloseStream,
  ApiCreateStream,
  ApiGetStream,
  ApiKeyProtected,
  ApiStreamEvents,
  ApiStreamFrames,
} from '../docs/route-docs.js';
import { CreateStreamBody, StreamFramesQuery, StreamViewQuery } from './create-stream.dto.js';
import { relayBaseOf } from './session-grants.js';
import { StreamsService } from './streams.service.js';

@ApiKeyProtected('streams')
@Controller('v1/streams')
export class StreamsController {
  constructor(
    private readonly streams: StreamsService,
    private readonly delivery: EventDelivery,
    private readonly pipeline: SubmissionPipeline,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  @Post()
  @HttpCode(201)
  @ApiCreateStream()
  @Idempotent()
  create(
    @Body() body: CreateStreamBody,
    @Req() request: Request,
    @Caller() caller: Principal,
  ): Promise<StreamView> {
    const relayBase = relayBaseOf(request.headers, this.config);
    return this.streams.create(body, caller.tenant, { relayBase });
  }

  @Get(':id')
  @ApiGetStream()
  get(
    @Param('id') id: string,
    @Query() query: StreamViewQuery,
    @Req() request: Request,
    @Caller() caller: Principal,
  ): Promise<StreamView> {
    return this.streams.get(id, caller, {
      relayBase: relayBaseOf(request.headers, this.config),
      unreachable: query.unreachable,
    });
  }

  @Delete(':id')
  @ApiCloseStream()
  close(@Param('id') id: string, @Caller() caller: Principal): Promise<StreamView> {
    return this.streams.close(id, caller);
  }

  @Post(':id/frames')
  @HttpCode(202)
  @ApiStreamFrames()
  // Its Idempotency-Key is kept by the stream, atomically with the batch's seq (StreamsService).
  @AdmitsWork((accepted: AcceptedBatch) => accepted.jobId)
  async frames(
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @Req() request: Request,
    @Caller() caller: Principal,
  ): Promise<AcceptedBatch> {
    const upload = uploadKindOf(request.headers['content-type'], request.headers['content-encoding']);
    if (upload.kind !== 'raw') {
      throw new UnsupportedMediaTypeException(
        'stream frames are raw: Content-Type application/octet-stream, the layout given when the stream was created',
      );
    }
    return this.pipeline.receive(request, async (body) => {
      const { frames } = await validateParams(StreamFramesQuery, query);
      const key = request.headers['idempotency-key'];
      return this.streams.submitFrames(
        id,
        caller,
        frames,
        body,
        contentLengthOf(request),
        upload.encoding,
        typeof key === 'string' ? key : undefined,
      );
    });
  }

  @Get(':id/events')
  @ApiStreamEvents()
  async events(
    @Param('id') id: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Query('since') since: string | undefined,
    @Res() response: Response,
    @Caller() caller: Principal,
  ): Promise<void> {
    await this.streams.record(id, caller);
    const after = resumePositionOf(lastEventId ?? since, { legacy: false });
    await this.delivery.streamSse(id, after, response);
  }
}
