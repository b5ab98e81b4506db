export * from './api-client.js';
export * from './sse.js';
