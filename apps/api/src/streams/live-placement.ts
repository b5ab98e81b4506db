// Placement is shared with the nodes (a draining node moves its session streams itself): libs/cluster.
export * from '#cluster/live-placement.js';
