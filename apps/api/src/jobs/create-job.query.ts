import { Type } from 'class-transformer';
import { IsDefined, IsIn, IsInt, IsNumber, IsOptional, Matches, Max, Min } from 'class-validator';
import {
  CODECS,
  PIXEL_FORMATS,
  POOLS,
  type Codec,
  type PixelFormat,
  type PoolPreference,
} from '../../../../libs/contracts/src/index.js';

/** Query parameters of `POST /v1/jobs` with raw frames (API.md). */
export class CreateJobQuery {
  @IsOptional()
  @IsIn(CODECS, { message: `codec must be one of ${CODECS.join(', ')}` })
  codec?: Codec;

  @IsOptional()
  @Matches(/^[a-z0-9]+(,[a-z0-9]+){0,8}$/, {
    message: 'accept must be a comma list of codecs, e.g. accept=h264,vp9',
  })
  accept?: string;

  @IsDefined({ message: 'width is required' })
  @Type(() => Number)
  @IsInt({ message: 'width must be an integer' })
  @Min(1, { message: 'width must be at least 1' })
  @Max(16383, { message: 'width must be at most 16383' })
  width!: number;

  @IsDefined({ message: 'height is required' })
  @Type(() => Number)
  @IsInt({ message: 'height must be an integer' })
  @Min(1, { message: 'height must be at least 1' })
  @Max(16383, { message: 'height must be at most 16383' })
  height!: number;

  @IsDefined({ message: 'format is required (pixel layout of the raw bytes)' })
  @IsIn(Object.keys(PIXEL_FORMATS), {
    message: `format must be one of ${Object.keys(PIXEL_FORMATS).join(', ')}`,
  })
  format!: PixelFormat;

  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'frames must be an integer' })
  @Min(1, { message: 'frames must be at least 1' })
  frames = 1;

  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'quality must be an integer from 0 to 100' })
  @Min(0, { message: 'quality must be an integer from 0 to 100' })
  @Max(100, { message: 'quality must be an integer from 0 to 100' })
  quality = 80;

  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'speed must be an integer from 0 to 100' })
  @Min(0, { message: 'speed must be an integer from 0 to 100' })
  @Max(100, { message: 'speed must be an integer from 0 to 100' })
  speed = 70;

  @IsOptional()
  @Type(() => Number)
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'fps must be a number from 1 to 240' })
  @Min(1, { message: 'fps must be a number from 1 to 240' })
  @Max(240, { message: 'fps must be a number from 1 to 240' })
  fps = 30;

  @IsOptional()
  @IsIn(POOLS, { message: `pool must be one of ${POOLS.join(', ')}` })
  pool: PoolPreference = 'auto';

  @IsOptional()
  @Type(() => Number)
  @IsInt({ message: 'priority must be an integer from 1 (highest) to 2097152' })
  @Min(1, { message: 'priority must be an integer from 1 (highest) to 2097152' })
  @Max(2_097_152, { message: 'priority must be an integer from 1 (highest) to 2097152' })
  priority?: number;
}
