import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ValidationPipe } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { Logger as PinoLogger } from 'pino';
import { AdminModule } from './admin/admin.module.js';
import { ApiKeyGuard } from './auth/api-key.guard.js';
import { AuthModule } from './auth/auth.module.js';
import { DispatchModule } from './dispatch/dispatch.module.js';
import { NodesModule } from './nodes/nodes.module.js';
import { HttpErrorFilter } from './common/http-errors.js';
import { VALIDATION_OPTIONS } from './common/validation.js';
import { API_CONFIG, type ApiConfig } from './config/api-config.js';
import { DeliveryModule } from './delivery/delivery.module.js';
import { HealthModule } from './health/health.module.js';
import { JobsModule } from './jobs/jobs.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { StreamsModule } from './streams/streams.module.js';
import { XpraModule } from './xpra/xpra.module.js';

@Module({})
export class AppModule {
  /**
   * The feature modules, and what applies to every route: the API key guard, the error filter and the
   * validation pipe. `logger`: the process's pino logger; the HTTP logging middleware (create-api.ts)
   * writes through it.
   */
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
        DispatchModule,
        AuthModule,
        // pino-http is mounted by createApi ahead of every route (Bull Board and /docs too); the module
        // only makes Nest's Logger write through the same logger, with the request id in request scope.
        LoggerModule.forRoot({ useExisting: true, ...(logger ? { pinoHttp: { logger } } : {}) }),
        DeliveryModule,
        ...(config.metricsEnabled ? [MetricsModule] : []),
        HealthModule,
        JobsModule,
        StreamsModule,
        NodesModule,
        XpraModule,
        AdminModule.forConfig(config),
      ],
      providers: [
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
