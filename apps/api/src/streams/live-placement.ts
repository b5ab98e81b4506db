// Placement is shared with the nodes (a draining node moves its session streams itself): libs/cluster.
export * from '../../../../libs/cluster/src/live-placement.js';
