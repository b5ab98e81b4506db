/**
 * Runs `count` units of work with at most `lanes` in flight, each lane taking the next unit as soon
 * as its previous one is done (a closed loop, like `lanes` clients); results in unit order.
 */
export async function runLanes<T>(
  count: number,
  lanes: number,
  work: (unit: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const unit = next++;
      results[unit] = await work(unit);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(lanes, count)) }, lane));
  return results;
}
