export * from './codecs';
export * from './jobs';
export * from './events';
export * from './nodes';
