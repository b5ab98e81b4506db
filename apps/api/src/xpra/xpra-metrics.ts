import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { metricName } from '../metrics/metric-labels.js';

const ROUND_TRIP_BUCKETS = [0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 10, 60];

/** The Xpra listener's figures, on the API's registry (`/metrics`). */
export class XpraMetrics {
  readonly connections: Gauge;
  readonly connectionsTotal: Counter;
  readonly contexts: Gauge;
  readonly roundTrip: Histogram;
  readonly refused: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.connections = new Gauge({
      name: metricName('xpra_connections'),
      help: 'Xpra clients connected to the listener now',
      registers,
    });
    this.connectionsTotal = new Counter({
      name: metricName('xpra_connections_total'),
      help: 'Xpra connections accepted, by how they ended the handshake',
      labelNames: ['outcome'],
      registers,
    });
    this.contexts = new Gauge({
      name: metricName('xpra_contexts'),
      help: 'Xpra video contexts open now (each one a live stream on the cluster)',
      labelNames: ['encoding'],
      registers,
    });
    this.roundTrip = new Histogram({
      name: metricName('xpra_round_trip_seconds'),
      help: 'From a request read off the socket to its reply written back: per video frame (context-compress) and per one-shot encode',
      labelNames: ['request', 'encoding'],
      buckets: ROUND_TRIP_BUCKETS,
      registers,
    });
    this.refused = new Counter({
      name: metricName('xpra_errors_total'),
      help: 'Xpra requests answered with an error, and connections closed for a malformed packet',
      labelNames: ['kind'],
      registers,
    });
  }
}
