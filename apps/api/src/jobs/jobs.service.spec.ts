import { NotFoundException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { type EncodeJobData } from '#contracts';
import { encodeJobData } from '#contracts/testing/encode-job.js';
import type { Principal } from '../auth/key-ring.js';
import { jobRecord, submissionFakes } from '../testing/fakes.js';
import { JobsService } from './jobs.service.js';

const ACME: Principal = { tenant: 'acme', operator: false };
const OTHER: Principal = { tenant: 'other', operator: false };
const OPERATOR: Principal = { tenant: 'default', operator: true };

function storedJob(jobId: string, extra: Partial<EncodeJobData> = {}): EncodeJobData {
  return encodeJobData({ jobId, width: 4, height: 2, frames: 2, createdAt: 1, ...extra });
}

async function setUp() {
  const { fakes, providers } = submissionFakes();
  const module = await Test.createTestingModule({ providers: [JobsService, ...providers] }).compile();
  return { service: module.get(JobsService), fakes };
}

describe('JobsService visibility and cancel', () => {
  const ID = 'AAAAAAAAAAAAAAAA';

  async function withJob(status: 'queued' | 'active' | 'completed', tenant: string | null = 'acme') {
    const setup = await setUp();
    setup.fakes.jobs.records.set(ID, jobRecord(storedJob(ID), tenant, { status }));
    return setup;
  }

  it("answers another tenant's job exactly like an unknown one (404), and shows it to its owner and operators", async () => {
    const { service } = await withJob('queued');
    const unknown = await service.get('BBBBBBBBBBBBBBBB', ACME).catch((caught: unknown) => caught);
    const foreign = await service.get(ID, OTHER).catch((caught: unknown) => caught);
    expect(foreign).toBeInstanceOf(NotFoundException);
    expect((foreign as Error).message).toBe((unknown as Error).message.replace('BBBBBBBBBBBBBBBB', ID));
    await expect(service.get(ID, ACME)).resolves.toMatchObject({ id: ID, status: 'queued' });
    await expect(service.get(ID, OPERATOR)).resolves.toMatchObject({ id: ID });
  });

  it('shows a job made before tenancy to the default tenant only', async () => {
    const { service } = await withJob('queued', null);
    await expect(service.get(ID, { tenant: 'default', operator: false })).resolves.toMatchObject({ id: ID });
    await expect(service.get(ID, ACME)).rejects.toThrow(NotFoundException);
  });

  it('does not look up an id that cannot be a job id', async () => {
    const { service, fakes } = await withJob('queued');
    fakes.jobs.records.set('short', fakes.jobs.records.get(ID)!);
    await expect(service.get('short', OPERATOR)).rejects.toThrow(NotFoundException);
  });

  it('cancels an unfinished job: leaves the queue, fails with an event, tells the node, drops its input', async () => {
    const { service, fakes } = await withJob('active');
    const view = await service.cancel(ID, ACME);
    expect(view).toMatchObject({ id: ID, status: 'failed', error: 'cancelled by the client' });
    expect(fakes.queue.removed).toEqual([{ pool: 'cpu', jobId: ID }]);
    expect(fakes.events.appended).toEqual([
      { jobId: ID, event: { type: 'failed', error: 'cancelled by the client' } },
    ]);
    expect(fakes.cancellations.announced).toEqual([ID]);
    expect(fakes.frames.deleted).toEqual([ID]);
    expect(fakes.outputs.deletedAll).toEqual([ID]);
    expect(fakes.jobs.records.has(ID)).toBe(true);
  });

  it('deletes a finished job: its outputs and its record, answering it without outputs', async () => {
    const { service, fakes } = await withJob('completed');
    fakes.outputs.outputs.set(`${ID}/0`, Buffer.from('png'));
    const view = await service.cancel(ID, ACME);
    expect(view).toMatchObject({ id: ID, status: 'completed', outputs: [] });
    expect(fakes.outputs.outputs.size).toBe(0);
    expect(fakes.jobs.records.has(ID)).toBe(false);
    expect(fakes.queue.removed).toEqual([]);
    expect(fakes.events.appended).toEqual([]);
    expect(fakes.cancellations.announced).toEqual([]);
  });

  it("refuses to cancel another tenant's job (404) and leaves it alone", async () => {
    const { service, fakes } = await withJob('queued');
    await expect(service.cancel(ID, OTHER)).rejects.toThrow(NotFoundException);
    expect(fakes.jobs.records.get(ID)?.status).toBe('queued');
    expect(fakes.queue.removed).toEqual([]);
  });
});
