import { Global, Module } from '@nestjs/common';
import { EventDelivery } from './event-delivery.js';
import { EventHub } from './event-hub.js';
import { EventLogs } from './event-logs.js';

/**
 * Job and stream events to clients over SSE and WebSocket (EventDelivery), and the one Redis
 * subscription that wakes them (EventHub, also tapped by metrics and admission). Global: jobs, streams,
 * metrics, admission and Xpra all follow events.
 */
@Global()
@Module({
  providers: [EventHub, EventLogs, EventDelivery],
  exports: [EventHub, EventDelivery],
})
export class DeliveryModule {}
