import type { EncodeJobData } from '#contracts';
import { batchEvents } from './stream-batches.js';
import { encodeJobData } from '#contracts/testing/encode-job.js';

function job(codec: EncodeJobData['codec'], frames: number): EncodeJobData {
  return encodeJobData({
    jobId: 'job-1',
    codec,
    width: 4,
    height: 4,
    frames,
    stream: { streamId: 's1', mode: 'batch', seq: 7, firstFrame: 20 },
  });
}

describe('batchEvents', () => {
  it('gives image outputs their stream-wide frame numbers, then the batch event', () => {
    const events = batchEvents(job('jpeg', 2), {
      status: 'completed',
      node: 'n1',
      error: null,
      outputs: [
        { index: 0, contentType: 'image/jpeg', bytes: 10 },
        { index: 1, contentType: 'image/jpeg', bytes: 11 },
      ],
    });
    expect(events).toEqual([
      { type: 'output', seq: 7, jobId: 'job-1', index: 0, frame: 20, contentType: 'image/jpeg', bytes: 10 },
      { type: 'output', seq: 7, jobId: 'job-1', index: 1, frame: 21, contentType: 'image/jpeg', bytes: 11 },
      { type: 'batch', seq: 7, jobId: 'job-1', frames: 2, outputs: 2, node: 'n1' },
    ]);
  });

  it('gives a video segment no frame number, and a failed batch its reason', () => {
    const video = batchEvents(job('h264', 5), {
      status: 'completed',
      node: 'n1',
      error: null,
      outputs: [{ index: 0, contentType: 'video/mp4', bytes: 99 }],
    });
    expect(video[0]).not.toHaveProperty('frame');
    expect(batchEvents(job('h264', 5), { status: 'failed', node: null, error: 'boom', outputs: [] })).toEqual(
      [{ type: 'batch-failed', seq: 7, jobId: 'job-1', frames: 5, error: 'boom' }],
    );
  });
});
