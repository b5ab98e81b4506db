import { uncompressSync } from 'lz4-napi';
import { BadRequestException, UnprocessableEntityException } from '@nestjs/common';
import { Readable } from 'node:stream';
import { Test } from '@nestjs/testing';
import sharp from 'sharp';
import { frameByteLength } from '#contracts';
import { RetryLaterException } from '../common/http-errors.js';
import { submissionFakes, liveNode, rawUpload } from '../testing/fakes.js';
import { CreateJobQuery } from './create-job.query.js';
import type { Upload } from '../submission/upload-limits.js';
import { JobSubmission } from './job-submission.js';

function query(fields: Partial<CreateJobQuery>): CreateJobQuery {
  return Object.assign(new CreateJobQuery(), { width: 4, height: 2, format: 'rgba', frames: 2 }, fields);
}

async function setUp(nodes = [liveNode('cpu-1', 'cpu', ['png', 'h264'])]) {
  const { fakes, providers } = submissionFakes(nodes);
  const module = await Test.createTestingModule({ providers: [JobSubmission, ...providers] }).compile();
  return { service: module.get(JobSubmission), fakes };
}

describe('JobSubmission of raw frames', () => {
  it('answers 503 with Retry-After when no node is alive, and stores nothing', async () => {
    const { service, fakes } = await setUp([]);
    const error = await service
      .submitRaw(query({ codec: 'png' }), rawUpload(Buffer.alloc(64)), 64, 'identity', 'acme')
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RetryLaterException);
    expect((error as RetryLaterException).getStatus()).toBe(503);
    expect((error as RetryLaterException).retryAfterSeconds).toBe(5);
    expect(fakes.frames.frames.size).toBe(0);
    expect(fakes.jobs.records.size).toBe(0);
  });

  it('answers 422 naming what the cluster offers when no live node encodes the codec', async () => {
    const { service, fakes } = await setUp();
    const error = await service
      .submitRaw(query({ codec: 'av1' }), rawUpload(Buffer.alloc(64)), 64, 'identity', 'acme')
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UnprocessableEntityException);
    expect((error as UnprocessableEntityException).getResponse()).toEqual({
      message: 'no live node can encode av1; the cluster offers: h264, png',
      available: ['h264', 'png'],
    });
    expect(fakes.frames.frames.size).toBe(0);
  });

  it('stores the frames, records the job for its tenant and queues it on the routed pool', async () => {
    const { service, fakes } = await setUp();
    const body = Buffer.alloc(frameByteLength(4, 2, 'rgba') * 2, 7);
    const accepted = await service.submitRaw(
      query({ codec: 'png', priority: 3 }),
      rawUpload(body, 5),
      body.length,
      'identity',
      'acme',
    );
    expect(accepted).toMatchObject({ status: 'queued', codec: 'png', pool: 'cpu', frames: 2 });
    expect(fakes.frames.frames.get(accepted.id)).toEqual([body.subarray(0, 32), body.subarray(32)]);
    expect(fakes.jobs.records.get(accepted.id)?.tenant).toBe('acme');
    expect(fakes.queue.added).toEqual([{ jobId: accepted.id, priority: 3 }]);
    // Stored as one LZ4 block a frame (STORE_LZ4_MAX_FRAME_BYTES), which is what the job says.
    const values = fakes.frames.encoded.get(accepted.id)!;
    expect(values.map((value) => uncompressSync(value))).toEqual([body.subarray(0, 32), body.subarray(32)]);
    expect(fakes.jobs.records.get(accepted.id)?.data.input).toEqual({
      encoding: 'lz4-block',
      storedBytes: values[0].length + values[1].length,
    });
  });

  it('stores frames as sent when STORE_LZ4_MAX_FRAME_BYTES is 0', async () => {
    const { fakes, providers } = submissionFakes([liveNode('cpu-1', 'cpu', ['png'])], {
      STORE_LZ4_MAX_FRAME_BYTES: '0',
    });
    const module = await Test.createTestingModule({ providers: [JobSubmission, ...providers] }).compile();
    const body = Buffer.alloc(frameByteLength(4, 2, 'rgba') * 2, 7);
    const accepted = await module
      .get(JobSubmission)
      .submitRaw(query({ codec: 'png' }), rawUpload(body), body.length, 'identity', 'acme');
    expect(fakes.frames.encoded.has(accepted.id)).toBe(false);
    expect(fakes.jobs.records.get(accepted.id)?.data.input).toEqual({
      encoding: 'identity',
      storedBytes: body.length,
    });
  });

  it('refuses a body whose length does not match the parameters before storing anything', async () => {
    const { service, fakes } = await setUp();
    await expect(
      service.submitRaw(query({ codec: 'png' }), rawUpload(Buffer.alloc(60)), 60, 'identity', 'acme'),
    ).rejects.toThrow(BadRequestException);
    expect(fakes.frames.frames.size).toBe(0);
    expect(fakes.queue.added).toEqual([]);
  });
});

describe('JobSubmission of images', () => {
  const BOUNDARY = 'spec-boundary';

  /** A multipart upload: form fields, then each image as a `frame` file part. */
  function multipart(fields: Record<string, string>, images: Buffer[]): Upload {
    const pieces: Buffer[] = [];
    const part = (disposition: string, data: Buffer) =>
      pieces.push(
        Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: ${disposition}\r\n\r\n`),
        data,
        Buffer.from('\r\n'),
      );
    for (const [name, value] of Object.entries(fields)) part(`form-data; name="${name}"`, Buffer.from(value));
    images.forEach((image, index) =>
      part(`form-data; name="frame"; filename="${index}.png"\r\nContent-Type: image/png`, image),
    );
    pieces.push(Buffer.from(`--${BOUNDARY}--\r\n`));
    const request = Object.assign(Readable.from([Buffer.concat(pieces)]), {
      headers: { 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
    });
    return { request, count: () => undefined, onStall: () => () => undefined } as unknown as Upload;
  }

  const png = (width: number, height: number) =>
    sharp({ create: { width, height, channels: 4, background: '#336699' } })
      .png()
      .toBuffer();

  it('stores each image as a raw RGBA frame and queues the job with the form fields as parameters', async () => {
    const { service, fakes } = await setUp();
    const images = [await png(4, 2), await png(4, 2)];
    const accepted = await service.submitEncoded(
      {},
      multipart({ codec: 'png', priority: '2' }, images),
      null,
      'acme',
    );
    expect(accepted).toMatchObject({ status: 'queued', codec: 'png', frames: 2 });
    const stored = fakes.frames.frames.get(accepted.id);
    expect(stored?.map((frame) => frame.length)).toEqual([32, 32]);
    expect([...stored![0].subarray(0, 4)]).toEqual([0x33, 0x66, 0x99, 0xff]);
    expect(fakes.jobs.records.get(accepted.id)?.data).toMatchObject({ width: 4, height: 2, format: 'rgba' });
    expect(fakes.queue.added).toEqual([{ jobId: accepted.id, priority: 2 }]);
  });

  it('refuses with 400 images of different sizes, keeping nothing stored', async () => {
    const { service, fakes } = await setUp();
    const upload = multipart({ codec: 'png' }, [await png(4, 2), await png(2, 2)]);
    await expect(service.submitEncoded({}, upload, null, 'acme')).rejects.toThrow(
      /frame 2 \(1\.png\) is 2x2 but frame 1 is 4x2/,
    );
    expect(fakes.frames.frames.size).toBe(0);
    expect(fakes.queue.added).toEqual([]);
  });

  it('drops the stored frames when the job cannot be routed (422)', async () => {
    const { service, fakes } = await setUp();
    const upload = multipart({ codec: 'av1' }, [await png(4, 2)]);
    await expect(service.submitEncoded({}, upload, null, 'acme')).rejects.toThrow(
      UnprocessableEntityException,
    );
    expect(fakes.frames.frames.size).toBe(0);
    expect(fakes.frames.deleted.length).toBe(1);
  });
});
