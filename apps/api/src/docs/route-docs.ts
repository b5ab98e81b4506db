import { applyDecorators } from '@nestjs/common';
import {
  ApiAcceptedResponse,
  ApiBadRequestResponse,
  ApiBearerAuth,
  ApiConsumes,
  ApiCreatedResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiProduces,
  ApiQuery,
  ApiRequestTimeoutResponse,
  ApiSecurity,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
  ApiUnprocessableEntityResponse,
  ApiUnsupportedMediaTypeResponse,
} from '@nestjs/swagger';
import { CreateJobQuery } from '../jobs/create-job.query.js';
import { AcceptedJobDto, CodecsDto, ErrorDto, JobViewDto, NodeDto, StreamViewDto } from './schemas.js';

// OpenAPI decorators for the REST routes, kept here so that the controllers carry one line each.
// The request body of POST /v1/jobs (raw bytes or multipart parts) is described in openapi.ts.

const RETRY_AFTER = {
  'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'integer', example: 5 } },
};

/** Controller level: the tag, the two ways to present a key, and the 401 every route can answer. */
export const ApiKeyProtected = (tag: string) =>
  applyDecorators(
    ApiTags(tag),
    ApiBearerAuth('bearer'),
    ApiSecurity('api-key'),
    ApiUnauthorizedResponse({ type: ErrorDto, description: 'API_KEYS is set and no valid key was sent' }),
    ApiTooManyRequestsResponse({
      type: ErrorDto,
      description: 'too many wrong keys from this address (Retry-After), or too much unfinished work',
    }),
  );

export const ApiCreateJob = () =>
  applyDecorators(
    ApiOperation({
      summary: 'Submit a batch of frames to encode',
      description:
        'Raw frames: `Content-Type: application/octet-stream`, the frames concatenated, `width`, `height`, ' +
        '`format` and `frames` in the query; the body must be exactly frames x width x height x bytes per pixel ' +
        '(`Content-Encoding: lz4|gzip|deflate` allowed). Encoded frames: `multipart/form-data` with `frame` file ' +
        'parts (PNG, JPEG or WebP, all the same size) and the other parameters as form fields.',
    }),
    ApiConsumes('application/octet-stream', 'multipart/form-data'),
    ApiQuery({ type: CreateJobQuery }),
    ApiHeader({
      name: 'Content-Encoding',
      required: false,
      description: 'raw frames only: identity (default), lz4, gzip or deflate',
    }),
    ApiAcceptedResponse({ type: AcceptedJobDto, description: 'stored and queued; follow links.events' }),
    ApiBadRequestResponse({ type: ErrorDto, description: 'parameters or a body that do not fit' }),
    ApiPayloadTooLargeResponse({
      type: ErrorDto,
      description: 'over MAX_BODY_BYTES, MAX_FRAME_PIXELS or MAX_FRAMES_PER_JOB',
    }),
    ApiUnsupportedMediaTypeResponse({
      type: ErrorDto,
      description: 'another Content-Type or Content-Encoding',
    }),
    ApiUnprocessableEntityResponse({
      type: ErrorDto,
      description: 'no live node can encode the codec (or any of accept)',
    }),
    ApiRequestTimeoutResponse({
      type: ErrorDto,
      description: 'the body sent nothing for UPLOAD_IDLE_TIMEOUT_MS; nothing was stored',
    }),
    ApiTooManyRequestsResponse({
      type: ErrorDto,
      description:
        "over MAX_JOBS_PER_CLIENT unfinished jobs, or this client's uploads in progress over UPLOAD_BYTES_PER_CLIENT",
      headers: RETRY_AFTER,
    }),
    ApiServiceUnavailableResponse({
      type: ErrorDto,
      description:
        'no encoder node alive, Redis unavailable, or the API over UPLOAD_BYTES_IN_FLIGHT or IMAGE_BYTES_IN_FLIGHT; nothing was stored',
      headers: RETRY_AFTER,
    }),
  );

export const ApiGetJob = () =>
  applyDecorators(
    ApiOperation({ summary: 'A job: status, progress, timings and outputs' }),
    ApiOkResponse({ type: JobViewDto }),
    ApiNotFoundResponse({ type: ErrorDto, description: 'unknown id, or older than RETENTION_SECONDS' }),
  );

export const ApiCancelJob = () =>
  applyDecorators(
    ApiOperation({
      summary: 'Cancel a job that has not finished; delete one that has',
      description:
        'A finished job (completed or failed) is deleted: its outputs at once, then its record (404 afterwards).',
    }),
    ApiOkResponse({
      type: JobViewDto,
      description: 'the job, now failed with "cancelled by the client"; or as it finished, without outputs',
    }),
    ApiNotFoundResponse({ type: ErrorDto, description: "unknown, expired, or another tenant's" }),
  );

export const ApiJobOutput = () =>
  applyDecorators(
    ApiOperation({
      summary: 'One encoded output',
      description:
        'Image codecs: one output per frame. Video codecs: one output (index 0), a playable stream.',
    }),
    ApiProduces('image/jpeg', 'image/webp', 'image/png', 'image/avif', 'video/mp4', 'video/webm'),
    ApiOkResponse({ description: 'the encoded bytes', schema: { type: 'string', format: 'binary' } }),
    ApiBadRequestResponse({ type: ErrorDto, description: 'the index is not an integer' }),
    ApiNotFoundResponse({ type: ErrorDto, description: 'unknown job, output not ready yet, or expired' }),
  );

export const ApiJobEvents = () =>
  applyDecorators(
    ApiOperation({
      summary: 'Server-Sent Events of a job: active, progress, output, completed, failed',
      description:
        "Event ids count 1, 2, 3, ... per job, as a stream's; reconnect with `Last-Event-ID` (or `?since=`) " +
        'to resume without loss. An id of the earlier form (`1700000000000-0`) is still accepted.',
    }),
    ApiHeader({ name: 'Last-Event-ID', required: false, description: 'resume after this event id' }),
    ApiQuery({
      name: 'since',
      required: false,
      description: 'same as Last-Event-ID',
      example: '7',
    }),
    ApiProduces('text/event-stream'),
    ApiOkResponse({ description: 'an event stream that ends after completed or failed' }),
    ApiBadRequestResponse({ type: ErrorDto, description: 'Last-Event-ID is not an event id' }),
    ApiNotFoundResponse({ type: ErrorDto }),
  );

export const ApiListNodes = () =>
  applyDecorators(
    ApiOperation({ summary: 'The live encoder nodes (their heartbeat records)' }),
    ApiOkResponse({ type: [NodeDto] }),
  );

export const ApiListCodecs = () =>
  applyDecorators(
    ApiOperation({ summary: 'What the live cluster can encode now, per pool' }),
    ApiOkResponse({ type: CodecsDto }),
  );

export const ApiCreateStream = () =>
  applyDecorators(
    ApiOperation({
      summary: 'Open a stream: many batches of frames, results delivered in order',
      description:
        'JSON body: `codec` (or `accept`), `width`, `height`, `format`, optional `fps`, `quality`, `speed`, `pool`, `oddSize`, ' +
        '`mode` (batch: each batch self-contained, encoded in parallel; live: pinned to one node that keeps its ' +
        'video encoder running, one packet per frame), `keyframeInterval` (live) and `compression` (live sessions: ' +
        'none or lz4). A live stream answers its `session`: frames go over one WebSocket straight to its node.',
    }),
    ApiCreatedResponse({ type: StreamViewDto }),
    ApiBadRequestResponse({ type: ErrorDto }),
    ApiPayloadTooLargeResponse({ type: ErrorDto, description: 'frames over MAX_FRAME_PIXELS' }),
    ApiUnprocessableEntityResponse({ type: ErrorDto, description: 'no live node can encode the codec' }),
    ApiServiceUnavailableResponse({
      type: ErrorDto,
      headers: RETRY_AFTER,
      description: 'Redis away, or (mode live) every node that can encode the codec is at its live capacity',
    }),
  );

export const ApiGetStream = () =>
  applyDecorators(
    ApiOperation({
      summary: 'A stream: its parameters, state, batches acknowledged and delivered, and its live session',
      description:
        'A live stream answers its current `session` with a fresh token. `?unreachable=<node>`: the client cannot reach ' +
        "its session's node; the API probes the node's data port and, if it does not answer, moves the stream to " +
        'another node at once (the answer carries the new session). `GET /v1/streams/:id/session` (WebSocket, API key) ' +
        'relays the same session through the API.',
    }),
    ApiOkResponse({ type: StreamViewDto }),
    ApiBadRequestResponse({ type: ErrorDto, description: 'unreachable is not a node id' }),
    ApiNotFoundResponse({ type: ErrorDto }),
    ApiServiceUnavailableResponse({
      type: ErrorDto,
      headers: RETRY_AFTER,
      description: 'Redis away, or the reported node is silent and no other node can take the stream now',
    }),
  );

export const ApiCloseStream = () =>
  applyDecorators(
    ApiOperation({
      summary: 'End a stream',
      description:
        'It takes no more frames (409); batches already acknowledged are still delivered, then an `end` event.',
    }),
    ApiOkResponse({ type: StreamViewDto }),
    ApiNotFoundResponse({ type: ErrorDto }),
  );

export const ApiStreamFrames = () =>
  applyDecorators(
    ApiOperation({
      summary: 'Submit a batch of raw frames to a stream',
      description:
        "`application/octet-stream`, `frames` frames in the stream's layout (`Content-Encoding: lz4|gzip|deflate` " +
        "allowed). Answers the batch's `seq`: its place in the stream. `Idempotency-Key` makes a retry safe.",
    }),
    ApiConsumes('application/octet-stream'),
    ApiQuery({ name: 'frames', required: false, example: 1 }),
    ApiHeader({ name: 'Idempotency-Key', required: false }),
    ApiAcceptedResponse({ description: '{ streamId, seq, jobId, frames, firstFrame }' }),
    ApiBadRequestResponse({ type: ErrorDto }),
    ApiNotFoundResponse({ type: ErrorDto }),
    ApiPayloadTooLargeResponse({ type: ErrorDto }),
    ApiUnsupportedMediaTypeResponse({ type: ErrorDto }),
    ApiRequestTimeoutResponse({ type: ErrorDto }),
    ApiTooManyRequestsResponse({ type: ErrorDto, headers: RETRY_AFTER }),
    ApiServiceUnavailableResponse({ type: ErrorDto, headers: RETRY_AFTER }),
  );

export const ApiStreamEvents = () =>
  applyDecorators(
    ApiOperation({
      summary: 'Server-Sent Events of a stream, in submission order: output, batch, batch-failed, end',
      description:
        'Event ids count 1, 2, 3, ... per stream; reconnect with `Last-Event-ID` (or `?since=`) to get exactly what ' +
        'was missed. A consumer further behind than the kept log gets a `fell-behind` event. ' +
        '`GET /v1/streams/:id/ws?since=N` delivers the same events over a WebSocket, each output followed by its bytes.',
    }),
    ApiHeader({ name: 'Last-Event-ID', required: false }),
    ApiQuery({ name: 'since', required: false, example: '0' }),
    ApiProduces('text/event-stream'),
    ApiNotFoundResponse({ type: ErrorDto }),
  );
