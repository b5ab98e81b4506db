import { eventIdOf, numberOf, positionOf } from './event-ids.js';

describe('event ids', () => {
  it('reads a number as a numbered position, none as the start', () => {
    expect(positionOf('7', { legacy: false })).toBe('0-7');
    expect(positionOf('0', { legacy: false })).toBe('0-0');
    expect(positionOf(undefined, { legacy: false })).toBe('0-0');
    expect(positionOf('', { legacy: true })).toBe('0-0');
  });
  it('takes an ms-seq id only where logs may have them (jobs)', () => {
    expect(positionOf('1700000000000-3', { legacy: true })).toBe('1700000000000-3');
    expect(positionOf('1700000000000-3', { legacy: false })).toBeNull();
  });
  it('refuses anything else', () => {
    for (const text of ['07', '-1', '1e3', '$', '1-2-3', ' 7', '1700000000000-x'])
      expect({ text, position: positionOf(text, { legacy: true }) }).toEqual({ text, position: null });
  });
  it('shows a numbered position as its number and a legacy one as it is', () => {
    expect(eventIdOf('0-12')).toBe(12);
    expect(eventIdOf('1700000000000-3')).toBe('1700000000000-3');
    expect(numberOf('0-12')).toBe(12);
    expect(numberOf('1700000000000-3')).toBeNull();
  });
});
