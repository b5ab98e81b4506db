export const REDIS = Symbol('REDIS');
export const SUBSCRIBER = Symbol('SUBSCRIBER');
