import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ValidationPipe } from '@nestjs/common';
import { ApiKeyGuard } from './auth/api-key.guard.js';
import { ClusterModule } from './cluster/cluster.module.js';
import { NodesController } from './cluster/nodes.controller.js';
import { HttpErrorFilter, validationExceptionFactory } from './common/http-errors.js';
import { API_CONFIG, type ApiConfig } from './config/api-config.js';
import { EventHub } from './events/event-hub.js';
import { HealthController } from './health/health.controller.js';
import { JobsController } from './jobs/jobs.controller.js';
import { JobsService } from './jobs/jobs.service.js';

@Module({})
export class AppModule {
  static forConfig(config: ApiConfig): DynamicModule {
    const configModule: DynamicModule = {
      module: class ConfigModule {},
      global: true,
      providers: [{ provide: API_CONFIG, useValue: config }],
      exports: [API_CONFIG],
    };
    return {
      module: AppModule,
      imports: [configModule, ClusterModule],
      controllers: [JobsController, NodesController, HealthController],
      providers: [
        JobsService,
        EventHub,
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        { provide: APP_FILTER, useClass: HttpErrorFilter },
        {
          provide: APP_PIPE,
          useValue: new ValidationPipe({
            transform: true,
            whitelist: true,
            forbidNonWhitelisted: true,
            exceptionFactory: validationExceptionFactory,
          }),
        },
      ],
    };
  }
}
