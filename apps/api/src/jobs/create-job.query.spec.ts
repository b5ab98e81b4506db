import { BadRequestException } from '@nestjs/common';
import { parseAccept } from './create-job.query.js';

describe('parseAccept', () => {
  it('keeps the known codecs in the order given', () => {
    expect(parseAccept('h264,vp9')).toEqual(['h264', 'vp9']);
  });

  it('skips names it does not know (a client that knows newer codecs)', () => {
    expect(parseAccept('nosuchcodec,vp9,h264')).toEqual(['vp9', 'h264']);
    expect(parseAccept('h266,av2,png')).toEqual(['png']);
  });

  it('answers 400 when it knows none of them, naming what it knows', () => {
    const error = (() => {
      try {
        return parseAccept('nosuchcodec,h266');
      } catch (caught) {
        return caught;
      }
    })();
    expect(error).toBeInstanceOf(BadRequestException);
    expect((error as Error).message).toBe(
      'accept lists no codec this service knows (nosuchcodec, h266); known codecs: jpeg, webp, png, avif, h264, hevc, vp8, vp9, av1',
    );
  });
});
