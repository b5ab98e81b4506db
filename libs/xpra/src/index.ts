export * from './rencode.js';
export * from './framing.js';
