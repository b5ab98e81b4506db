import { BadRequestException } from '@nestjs/common';
import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsDefined, IsIn, IsInt, IsNumber, IsOptional, Matches, Max, Min } from 'class-validator';
import {
  CODECS,
  PIXEL_FORMATS,
  isCodec,
  ODD_SIZE_POLICIES,
  POOLS,
  type Codec,
  type OddSizePolicy,
  type PixelFormat,
  type PoolPreference,
} from '#contracts';
import { DecimalInteger, DecimalNumber } from '../common/validation.js';

/**
 * The encoding parameters of `POST /v1/jobs` (API.md), whatever the body: the query string of a raw
 * upload, the form fields of a multipart one. One set of rules for both.
 */
export class EncodeParams {
  @ApiPropertyOptional({
    enum: CODECS,
    example: 'jpeg',
    description: 'the codec to encode to (or give accept)',
  })
  @IsOptional()
  @IsIn(CODECS, { message: `codec must be one of ${CODECS.join(', ')}` })
  codec?: Codec;

  @ApiPropertyOptional({
    example: 'h264,vp9',
    description:
      'instead of codec: a comma list of codecs in order of preference; the server picks the first it can encode, skipping names it does not know',
  })
  @IsOptional()
  @Matches(/^[a-z0-9]+(,[a-z0-9]+){0,15}$/, {
    message: 'accept must be a comma list of codecs, e.g. accept=h264,vp9',
  })
  accept?: string;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 0,
    maximum: 100,
    default: 80,
    example: 90,
    description: 'higher = better picture',
  })
  @IsOptional()
  @DecimalInteger()
  @IsInt({ message: 'quality must be an integer from 0 to 100' })
  @Min(0, { message: 'quality must be an integer from 0 to 100' })
  @Max(100, { message: 'quality must be an integer from 0 to 100' })
  quality = 80;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 0,
    maximum: 100,
    default: 70,
    example: 70,
    description: 'higher = less encoder effort',
  })
  @IsOptional()
  @DecimalInteger()
  @IsInt({ message: 'speed must be an integer from 0 to 100' })
  @Min(0, { message: 'speed must be an integer from 0 to 100' })
  @Max(100, { message: 'speed must be an integer from 0 to 100' })
  speed = 70;

  @ApiPropertyOptional({
    type: Number,
    minimum: 1,
    maximum: 240,
    default: 30,
    example: 30,
    description: 'frame rate of video outputs',
  })
  @IsOptional()
  @DecimalNumber()
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: 'fps must be a number from 1 to 240' })
  @Min(1, { message: 'fps must be a number from 1 to 240' })
  @Max(240, { message: 'fps must be a number from 1 to 240' })
  fps = 30;

  @ApiPropertyOptional({
    enum: POOLS,
    default: 'auto',
    description: 'auto: gpu nodes when one can encode the codec, else cpu',
  })
  @IsOptional()
  @IsIn(POOLS, { message: `pool must be one of ${POOLS.join(', ')}` })
  pool: PoolPreference = 'auto';

  @ApiPropertyOptional({
    enum: ODD_SIZE_POLICIES,
    default: 'exact',
    description:
      'H.264/HEVC at an odd width or height: exact keeps the size but encodes 4:4:4 (High 4:4:4 / Main 4:4:4, ' +
      'which browsers and most hardware decoders cannot play); pad encodes 4:2:0 at the next even size, the ' +
      'extra column/row repeating the last one (the job and stream say outputWidth/outputHeight; crop back). ' +
      'Other codecs keep odd sizes exact in 4:2:0 and ignore it.',
  })
  @IsOptional()
  @IsIn(ODD_SIZE_POLICIES, { message: `oddSize must be one of ${ODD_SIZE_POLICIES.join(', ')}` })
  oddSize: OddSizePolicy = 'exact';

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 2_097_152,
    example: 1,
    description: '1 is the highest; none = FIFO',
  })
  @IsOptional()
  @DecimalInteger()
  @IsInt({ message: 'priority must be an integer from 1 (highest) to 2097152' })
  @Min(1, { message: 'priority must be an integer from 1 (highest) to 2097152' })
  @Max(2_097_152, { message: 'priority must be an integer from 1 (highest) to 2097152' })
  priority?: number;
}

/** Query parameters of `POST /v1/jobs` with raw frames: the encoding parameters and the frames' layout. */
export class CreateJobQuery extends EncodeParams {
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 16383,
    example: 1920,
    description: 'required with raw frames',
  })
  @IsDefined({ message: 'width is required' })
  @DecimalInteger()
  @IsInt({ message: 'width must be an integer' })
  @Min(1, { message: 'width must be at least 1' })
  @Max(16383, { message: 'width must be at most 16383' })
  width!: number;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: 16383,
    example: 1080,
    description: 'required with raw frames',
  })
  @IsDefined({ message: 'height is required' })
  @DecimalInteger()
  @IsInt({ message: 'height must be an integer' })
  @Min(1, { message: 'height must be at least 1' })
  @Max(16383, { message: 'height must be at most 16383' })
  height!: number;

  @ApiPropertyOptional({
    enum: Object.keys(PIXEL_FORMATS),
    example: 'bgra',
    description: 'required with raw frames: the pixel layout of the bytes',
  })
  @IsDefined({ message: 'format is required (pixel layout of the raw bytes)' })
  @IsIn(Object.keys(PIXEL_FORMATS), {
    message: `format must be one of ${Object.keys(PIXEL_FORMATS).join(', ')}`,
  })
  format!: PixelFormat;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    default: 1,
    example: 3,
    description: 'raw frames: how many the body holds (body = frames x width x height x bytes per pixel)',
  })
  @IsOptional()
  @DecimalInteger()
  @IsInt({ message: 'frames must be an integer' })
  @Min(1, { message: 'frames must be at least 1' })
  frames = 1;
}

/**
 * The codecs of an `accept` list, in its order. Names this service does not know are skipped, so a
 * client that knows newer codecs still gets one it can use; a list of none it knows is a 400.
 */
export function parseAccept(accept: string): Codec[] {
  const listed = accept.split(',');
  const known = listed.filter(isCodec);
  if (known.length === 0) {
    throw new BadRequestException(
      `accept lists no codec this service knows (${listed.join(', ')}); known codecs: ${CODECS.join(', ')}`,
    );
  }
  return known;
}
