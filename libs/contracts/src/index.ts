export * from './codecs.js';
export * from './jobs.js';
export * from './events.js';
export * from './nodes.js';
export * from './streams.js';
export * from './live-session.js';
