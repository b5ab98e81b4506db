import type { RedisClient } from './redis-connection.js';
import type { NodeRecord } from '#contracts';
import type { KeySpace } from './keys.js';

/**
 * Live encoder nodes. Each record expires unless its node refreshes it; the index set only says which
 * records to look for, and entries whose record expired are dropped as they are found.
 */
export class NodeRegistry {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: KeySpace,
  ) {}

  async beat(record: NodeRecord, ttlMs: number): Promise<void> {
    await this.redis.set(this.keys.node(record.id), JSON.stringify(record), 'PX', ttlMs);
    await this.redis.sadd(this.keys.nodesIndex, record.id);
  }

  async remove(nodeId: string): Promise<void> {
    await this.redis.del(this.keys.node(nodeId));
    await this.redis.srem(this.keys.nodesIndex, nodeId);
  }

  /** One node's record, null once it expired (the node stopped beating) or left. */
  async get(nodeId: string): Promise<NodeRecord | null> {
    const record = await this.redis.get(this.keys.node(nodeId));
    return record ? (JSON.parse(record) as NodeRecord) : null;
  }

  async list(): Promise<NodeRecord[]> {
    const ids = await this.redis.smembers(this.keys.nodesIndex);
    const records = await Promise.all(ids.map((id) => this.redis.get(this.keys.node(id))));
    const gone = ids.filter((_, index) => !records[index]);
    if (gone.length > 0) await this.redis.srem(this.keys.nodesIndex, ...gone);
    return records
      .filter((record): record is string => record !== null)
      .map((record) => JSON.parse(record) as NodeRecord)
      .sort((a, b) => a.name.localeCompare(b.name));
  }
}
