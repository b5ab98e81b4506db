import { Body, Controller, Get, Inject, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public } from '../auth/api-key.guard.js';
import { Authenticator, clientAddressOf } from '../auth/authenticator.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { countedElsewhere } from '../logging/http-logging.js';
import {
  ADMIN_COOKIE,
  clearedSessionCookie,
  parseCookies,
  safeReturnPath,
  sessionCookie,
} from './admin-session.js';
import { AdminSessions } from './admin-sessions.js';
import { dashboardRefusal } from './operator-auth.js';

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

export function loginPage(next: string, error?: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Encoder cluster - operator login</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;display:flex;justify-content:center;padding-top:12vh;margin:0}
form{background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002;min-width:22rem}
h1{font-size:1.2rem;margin-top:0}label{display:block;margin-bottom:.4rem}
input[type=password]{width:100%;box-sizing:border-box;padding:.5rem;font-family:monospace}
button{margin-top:1rem;padding:.5rem 1.2rem}.error{color:#b00020}
</style>
</head>
<body>
<form method="post" action="/admin/login">
<h1>Encoder cluster operations</h1>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<label for="key">Operator key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<input type="hidden" name="next" value="${escapeHtml(next)}">
<button type="submit">Log in</button>
</form>
</body>
</html>`;
}

const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Cache-Control': 'no-store',
  'Content-Security-Policy':
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
  'X-Frame-Options': 'DENY',
};

/**
 * A browser cannot send `Authorization` to a page it navigates to, so the dashboard has a login form:
 * the key is checked like every other (Authenticator: constant time, wrong keys limited per address),
 * only an operator's opens a session, and the session is kept in Redis so that logging out ends it.
 */
@ApiExcludeController()
@Public()
@Controller('admin')
export class AdminLoginController {
  constructor(
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly auth: Authenticator,
    private readonly sessions: AdminSessions,
  ) {}

  @Get('login')
  page(@Query('next') next: unknown, @Res() response: Response): void {
    const target = safeReturnPath(next);
    if (!this.auth.enabled) return response.redirect(303, target);
    response.status(200).set(PAGE_HEADERS).send(loginPage(target));
  }

  @Post('login')
  async login(@Body() body: unknown, @Req() request: Request, @Res() response: Response): Promise<void> {
    const form = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const target = safeReturnPath(form.next);
    if (!this.auth.enabled) return response.redirect(303, target);
    const key = typeof form.key === 'string' ? form.key.trim() : '';
    const verdict = this.auth.check(key || null, clientAddressOf(request));
    const refuse = (status: number, message: string) =>
      void response.status(status).set(PAGE_HEADERS).send(loginPage(target, message));
    if (!verdict.ok) {
      if (verdict.counted) countedElsewhere(response);
      if (verdict.retryAfterSeconds !== undefined)
        response.setHeader('Retry-After', String(verdict.retryAfterSeconds));
      if (verdict.status === 429)
        return refuse(429, `Too many wrong keys; try again in ${verdict.retryAfterSeconds} s.`);
      return refuse(401, key ? 'That API key is not valid.' : 'Enter an API key.');
    }
    if (!verdict.principal.operator)
      return refuse(403, `${dashboardRefusal(this.auth.keys.dashboardClosedToAll)}.`);
    const { sessionTtlSeconds, cookieSecure } = this.config.admin;
    response.setHeader(
      'Set-Cookie',
      sessionCookie(await this.sessions.open(), {
        maxAgeSeconds: sessionTtlSeconds,
        secure: cookieSecure || request.secure,
      }),
    );
    response.setHeader('Cache-Control', 'no-store');
    response.redirect(303, target);
  }

  /** Ends the session on the server too: the cookie, kept or copied, opens nothing afterwards. */
  @Post('logout')
  async logout(@Req() request: Request, @Res() response: Response): Promise<void> {
    await this.sessions.end(parseCookies(request.headers.cookie)[ADMIN_COOKIE]);
    response.setHeader('Set-Cookie', clearedSessionCookie(this.config.admin.cookieSecure || request.secure));
    response.redirect(303, '/admin/login');
  }
}
