import { BadRequestException } from '@nestjs/common';
import { CreateJobQuery, EncodeParams } from '../jobs/create-job.query.js';
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
