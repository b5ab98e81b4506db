import {
  BadRequestException,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  Res,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import type { Principal } from '../auth/key-ring.js';
import { Caller } from '../auth/tenancy.js';
import { EventDelivery } from '../delivery/event-delivery.js';
import { resumePositionOf } from '../delivery/event-ids.js';
import { parseDecimalInteger } from '../common/strict-input.js';
import { validateParams } from '../common/validation.js';
import { CreateJobQuery } from './create-job.query.js';
import { JobsService, JOB_ID_PATTERN } from './jobs.service.js';
import { JobSubmission } from './job-submission.js';
import { contentLengthOf, uploadKindOf } from '../submission/upload-kind.js';
import { StreamsService } from '../streams/streams.service.js';
import { liveSessionStreamOf } from '#contracts';
import { AdmitsWork } from '../submission/admission.guard.js';
import { Idempotent } from '../submission/idempotency.interceptor.js';
import { SubmissionPipeline, type AcceptedJob } from '../submission/submission-pipeline.js';
import {
  ApiCancelJob,
  ApiCreateJob,
  ApiGetJob,
  ApiJobEvents,
  ApiJobOutput,
  ApiKeyProtected,
} from '../docs/route-docs.js';

@ApiKeyProtected('jobs')
@Controller('v1/jobs')
export class JobsController {
  constructor(
    private readonly jobs: JobsService,
    private readonly delivery: EventDelivery,
    private readonly pipeline: SubmissionPipeline,
    private readonly submission: JobSubmission,
    private readonly streams: StreamsService,
  ) {}

  @Post()
  @HttpCode(202)
  @ApiCreateJob()
  @AdmitsWork((accepted: AcceptedJob) => accepted.id)
  @Idempotent()
  // The query's rules depend on the body (raw frames need width, height and format; images carry
  // them), so it is validated here, with the same pipe options, rather than by the global pipe.
  async create(
    @Query() query: Record<string, unknown>,
    @Req() request: Request,
    @Caller() caller: Principal,
  ): Promise<AcceptedJob> {
    const upload = uploadKindOf(request.headers['content-type'], request.headers['content-encoding']);
    return this.pipeline.receive(request, async (body) => {
      if (upload.kind === 'multipart')
        return this.submission.submitEncoded(query, body, contentLengthOf(request), caller.tenant);
      const params = await validateParams(CreateJobQuery, query);
      return this.submission.submitRaw(
        params,
        body,
        contentLengthOf(request),
        upload.encoding,
        caller.tenant,
      );
    });
  }

  @Get(':id')
  @ApiGetJob()
  get(@Param('id') id: string, @Caller() caller: Principal) {
    return this.jobs.get(id, caller);
  }

  @Delete(':id')
  @ApiCancelJob()
  cancel(@Param('id') id: string, @Caller() caller: Principal) {
    return this.jobs.cancel(id, caller);
  }

  @Get(':id/outputs/:index')
  @ApiJobOutput()
  async output(
    @Param('id') id: string,
    @Param('index') indexText: string,
    @Res() response: Response,
    @Caller() caller: Principal,
  ): Promise<void> {
    const index = parseDecimalInteger(indexText);
    if (index === null) throw new BadRequestException('output index must be a decimal integer such as 0');
    const sessionStream = liveSessionStreamOf(id);
    const output = sessionStream
      ? await this.streams.sessionOutput(sessionStream, index, caller)
      : await this.jobs.output(id, index, caller);
    response.setHeader('Content-Type', output.contentType);
    response.setHeader('Content-Length', String(output.data.length));
    response.setHeader('Cache-Control', 'private, max-age=3600, immutable');
    response.end(output.data);
  }

  @Get(':id/events')
  @ApiJobEvents()
  async eventsOf(
    @Param('id') id: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Query('since') since: string | undefined,
    @Res() response: Response,
    @Caller() caller: Principal,
  ): Promise<void> {
    await this.jobs.get(id, caller);
    const after = resumePositionOf(lastEventId ?? since, { legacy: true });
    if (!JOB_ID_PATTERN.test(id)) return;
    await this.delivery.jobSse(id, after, response);
  }
}
