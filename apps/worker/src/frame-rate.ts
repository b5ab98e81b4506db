/** Frames per second over a sliding window, for the node's registry record. */
export class FrameRate {
  private readonly samples: { at: number; frames: number }[] = [];

  constructor(
    private readonly windowMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  add(frames: number): void {
    this.samples.push({ at: this.now(), frames });
    this.prune();
  }

  perSecond(): number {
    this.prune();
    const frames = this.samples.reduce((sum, sample) => sum + sample.frames, 0);
    return Math.round((frames / (this.windowMs / 1000)) * 100) / 100;
  }

  private prune(): void {
    const oldest = this.now() - this.windowMs;
    while (this.samples.length > 0 && this.samples[0].at < oldest) this.samples.shift();
  }
}
