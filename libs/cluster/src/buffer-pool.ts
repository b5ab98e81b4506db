/**
 * Reuses large frame buffers. On small VMs a fresh 8 MB allocation costs ~10 ms of page faults, far
 * more than filling it; a node encodes frames of a few sizes over and over, so it keeps them.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooledBytes = 0;

  /** `shared`: buffers over SharedArrayBuffers, which other threads can write (LZ4 decoding). */
  constructor(
    private readonly maxPooledBytes: number,
    readonly shared = false,
  ) {}

  acquire(size: number): Buffer {
    const buffer = this.free.get(size)?.pop();
    if (buffer) {
      this.pooledBytes -= size;
      return buffer;
    }
    return this.shared ? Buffer.from(new SharedArrayBuffer(size)) : Buffer.allocUnsafeSlow(size);
  }

  release(buffer: Buffer): void {
    if (this.pooledBytes + buffer.length > this.maxPooledBytes) return;
    const list = this.free.get(buffer.length) ?? [];
    list.push(buffer);
    this.free.set(buffer.length, list);
    this.pooledBytes += buffer.length;
  }
}
