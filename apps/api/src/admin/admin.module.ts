import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { BullBoardModule } from '@bull-board/nestjs';
import { Module, type DynamicModule } from '@nestjs/common';
import { ENCODE_QUEUES } from '#cluster';
import type { ApiConfig } from '../config/api-config.js';
import { AdminLoginController } from './admin-login.controller.js';
import { ADMIN_HOME } from './admin-session.js';
import { DashboardAdapter } from './dashboard-adapter.js';
import { BoardAuthMiddleware } from './operator-auth.js';

/**
 * Bull Board at /admin/queues. Its routes are Express middleware that Nest guards never run on, so the
 * key check is the module's own `middleware` (BoardAuthMiddleware: operators only), mounted in front of
 * the board's router.
 */
@Module({})
export class AdminModule {
  static forConfig(config: ApiConfig): DynamicModule {
    const queueOptions = {
      readOnlyMode: config.admin.readOnly,
      allowRetries: !config.admin.readOnly,
      description: 'encode jobs (metadata only; frames and outputs are separate Redis keys)',
    };
    return {
      module: AdminModule,
      imports: [
        BullBoardModule.forRoot({
          route: ADMIN_HOME,
          adapter: DashboardAdapter,
          middleware: BoardAuthMiddleware,
          boardOptions: { uiConfig: { boardTitle: 'Encoder cluster' } },
        }),
        BullBoardModule.forFeature(
          ...Object.values(ENCODE_QUEUES).map((name) => ({
            name,
            adapter: BullMQAdapter,
            options: queueOptions,
          })),
        ),
      ],
      controllers: [AdminLoginController],
    };
  }
}
