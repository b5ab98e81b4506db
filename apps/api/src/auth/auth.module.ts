import { Global, Module } from '@nestjs/common';
import { AdminSessions } from '../admin/admin-sessions.js';
import { Authenticator } from './authenticator.js';

/**
 * Keys, the per-address limit on wrong ones, and dashboard sessions: global, because Bull Board's
 * middleware is resolved in Bull Board's own module.
 */
@Global()
@Module({ providers: [Authenticator, AdminSessions], exports: [Authenticator, AdminSessions] })
export class AuthModule {}
