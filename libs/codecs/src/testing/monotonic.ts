/** Throws, naming the step, where a sequence that must never go down does. */
export function expectNonDecreasing(values: number[], what: string) {
  for (let i = 1; i < values.length; i++) {
    if (values[i] < values[i - 1]) {
      throw new Error(
        `${what}: step ${i} goes from ${values[i - 1]} down to ${values[i]} (${values.join(',')})`,
      );
    }
  }
}
