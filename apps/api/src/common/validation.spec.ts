import { BadRequestException } from '@nestjs/common';
import { CreateJobQuery, EncodeParams } from '../jobs/create-job.query.js';
import { CreateStreamBody } from '../streams/create-stream.dto.js';
import { validateParams } from './validation.js';

describe('validateParams', () => {
  it('converts and defaults form fields with the query rules', async () => {
    const params = await validateParams(EncodeParams, { codec: 'png', quality: '90', fps: '59.94' });
    expect(params).toBeInstanceOf(EncodeParams);
    expect(params).toMatchObject({ codec: 'png', quality: 90, speed: 70, fps: 59.94, pool: 'auto' });
  });

  it('answers 400 with the same messages as the global pipe', async () => {
    const error = await validateParams(EncodeParams, { codec: 'gif', quality: '101', width: '8' }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(BadRequestException);
    const message = (error as BadRequestException).message;
    expect(message).toMatch(/codec must be one of jpeg/);
    expect(message).toMatch(/quality must be an integer from 0 to 100/);
    expect(message).toMatch(/property width should not exist/);
  });

  it('oddSize: exact by default, pad when asked, 400 naming the values otherwise (query, form, JSON)', async () => {
    expect(await validateParams(EncodeParams, { codec: 'h264' })).toMatchObject({ oddSize: 'exact' });
    expect(await validateParams(EncodeParams, { codec: 'h264', oddSize: 'pad' })).toMatchObject({
      oddSize: 'pad',
    });
    const json = { codec: 'hevc', width: 321, height: 181, format: 'bgra' };
    expect(await validateParams(CreateStreamBody, { ...json, oddSize: 'pad' })).toMatchObject({
      oddSize: 'pad',
    });
    for (const [type, plain] of [
      [EncodeParams, { codec: 'h264', oddSize: 'crop' }],
      [CreateStreamBody, { ...json, oddSize: 'PAD' }],
      [CreateStreamBody, { ...json, oddSize: ['pad'] }],
    ] as const) {
      const error = await validateParams(type as new () => object, plain).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(BadRequestException);
      expect((error as Error).message).toBe('oddSize must be one of exact, pad');
    }
  });

  it('raw uploads still need width, height and format', async () => {
    const error = await validateParams(CreateJobQuery, { codec: 'png' }).catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/width is required.*height is required.*format is required/);
    const query = await validateParams(CreateJobQuery, {
      codec: 'png',
      width: '8',
      height: '4',
      format: 'bgra',
    });
    expect(query).toMatchObject({ width: 8, height: 4, format: 'bgra', frames: 1, quality: 80 });
  });
});

describe('numbers in parameters', () => {
  const raw = { codec: 'png', width: '8', height: '4', format: 'bgra' };

  it.each(['0x1', '+1', '1e0', '01', ' 1', '1.0', 'Infinity'])(
    'frames=%j is refused: integers are plain decimal digits',
    async (frames) => {
      const error = await validateParams(CreateJobQuery, { ...raw, frames }).catch(
        (caught: unknown) => caught,
      );
      expect(error).toBeInstanceOf(BadRequestException);
      expect((error as Error).message).toMatch(/frames must be an integer/);
    },
  );

  it('a repeated or bracketed parameter (an array) is refused, not read as its first value', async () => {
    for (const frames of [['1'], ['1', '2']]) {
      const error = await validateParams(CreateJobQuery, { ...raw, frames }).catch(
        (caught: unknown) => caught,
      );
      expect((error as Error).message).toMatch(/frames must be an integer/);
    }
  });

  it('a negative number reads as one, and gets its range message', async () => {
    const error = await validateParams(CreateJobQuery, { ...raw, frames: '-1' }).catch(
      (caught: unknown) => caught,
    );
    expect((error as Error).message).toBe('frames must be at least 1');
  });

  it('fps keeps its fraction, in plain decimal only', async () => {
    expect(await validateParams(EncodeParams, { fps: '59.94' })).toMatchObject({ fps: 59.94 });
    for (const fps of ['0x1e', '3e1', '+30']) {
      const error = await validateParams(EncodeParams, { fps }).catch((caught: unknown) => caught);
      expect((error as Error).message).toMatch(/fps must be a number from 1 to 240/);
    }
  });

  it('JSON bodies: numbers are numbers, strings must be decimal, booleans are not numbers', async () => {
    const json = { codec: 'png', height: 4, format: 'bgra' };
    expect(await validateParams(CreateStreamBody, { ...json, width: 8 })).toMatchObject({ width: 8 });
    expect(await validateParams(CreateStreamBody, { ...json, width: '8' })).toMatchObject({ width: 8 });
    for (const width of ['0x8', true, [8]]) {
      const error = await validateParams(CreateStreamBody, { ...json, width }).catch(
        (caught: unknown) => caught,
      );
      expect((error as Error).message).toMatch(/width must be an integer/);
    }
    const error = await validateParams(CreateStreamBody, {
      ...json,
      width: 8,
      keyframeInterval: '1e2',
    }).catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/keyframeInterval must be an integer/);
  });
});
