import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ValidationPipe } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { LoggerModule } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { AdminModule } from './admin/admin.module.js';
import { ApiKeyGuard } from './auth/api-key.guard.js';
import { AuthModule } from './auth/auth.module.js';
import { ClusterModule } from './cluster/cluster.module.js';
import { GpuFallback } from './cluster/gpu-fallback.js';
import { Admission } from './jobs/admission.js';
import { IdempotencyStore } from './jobs/idempotency.js';
import { NoNodeTimeout } from './jobs/no-node-timeout.js';
import { NodesController } from './cluster/nodes.controller.js';
import { HttpErrorFilter } from './common/http-errors.js';
import { VALIDATION_OPTIONS } from './common/validation.js';
import { API_CONFIG, type ApiConfig } from './config/api-config.js';
import { DeliveryModule } from './delivery/delivery.module.js';
import { HealthController } from './health/health.controller.js';
import { JobsController } from './jobs/jobs.controller.js';
import { JobsService } from './jobs/jobs.service.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { MetricsService } from './metrics/metrics.service.js';
import { SubmissionGate } from './jobs/submission-gate.js';
import { UploadLimits } from './jobs/upload-limits.js';
import { DataPortProbe, LiveFailover } from './streams/live-failover.js';
import { LiveStreams } from './streams/live-streams.js';
import { SessionGrants, SessionSigner } from './streams/session-grants.js';
import { SessionRelay } from './streams/session-relay.js';
import { StreamSockets } from './streams/stream-sockets.js';
import { StreamStallCheck } from './streams/stream-stall-check.js';
import { StreamsController } from './streams/streams.controller.js';
import { StreamsService } from './streams/streams.service.js';
import { XpraListener } from './xpra/xpra-listener.js';
import { XpraOneShot } from './xpra/xpra-oneshot.js';

@Module({})
export class AppModule {
  /** `logger`: the process's pino logger; the HTTP logging middleware (create-api.ts) writes through it. */
  static forConfig(config: ApiConfig, logger?: PinoLogger): DynamicModule {
    const configModule: DynamicModule = {
      module: class ConfigModule {},
      global: true,
      providers: [{ provide: API_CONFIG, useValue: config }],
      exports: [API_CONFIG],
    };
    return {
      module: AppModule,
      imports: [
        configModule,
        ClusterModule,
        AuthModule,
        DeliveryModule,
        // pino-http is mounted by createApi ahead of every route (Bull Board and /docs too); the module
        // only makes Nest's Logger write through the same logger, with the request id in request scope.
        LoggerModule.forRoot({ useExisting: true, ...(logger ? { pinoHttp: { logger } } : {}) }),
        TerminusModule.forRoot({ errorLogStyle: 'json' }),
        AdminModule.forConfig(config),
      ],
      controllers: [
        JobsController,
        StreamsController,
        NodesController,
        HealthController,
        ...(config.metricsEnabled ? [MetricsController] : []),
      ],
      providers: [
        JobsService,
        GpuFallback,
        NoNodeTimeout,
        Admission,
        IdempotencyStore,
        SubmissionGate,
        UploadLimits,
        StreamsService,
        LiveStreams,
        SessionSigner,
        SessionGrants,
        DataPortProbe,
        LiveFailover,
        SessionRelay,
        StreamSockets,
        StreamStallCheck,
        // Off (nothing bound) unless XPRA_BIND is set.
        XpraOneShot,
        XpraListener,
        ...(config.metricsEnabled ? [MetricsService] : []),
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_FILTER, useClass: HttpErrorFilter },
        {
          provide: APP_PIPE,
          useValue: new ValidationPipe(VALIDATION_OPTIONS),
        },
      ],
    };
  }
}
