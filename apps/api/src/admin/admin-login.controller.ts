import { Body, Controller, Get, Inject, Logger, Post, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { Public, digestKeys, keyMatches } from '../auth/api-key.guard.js';
import { API_CONFIG, type ApiConfig } from '../config/api-config.js';
import { clearedSessionCookie, safeReturnPath, sessionCookie, signSession } from './admin-session.js';

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
<label for="key">API key</label>
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
 * the key is checked like ApiKeyGuard does (constant time), and a signed session cookie is set.
 */
@ApiExcludeController()
@Public()
@Controller('admin')
export class AdminLoginController {
  private readonly logger = new Logger('AdminLogin');
  private readonly keys: Buffer[];

  constructor(@Inject(API_CONFIG) private readonly config: ApiConfig) {
    this.keys = digestKeys(config.apiKeys);
  }

  @Get('login')
  page(@Query('next') next: unknown, @Res() response: Response): void {
    const target = safeReturnPath(next);
    if (this.keys.length === 0) return response.redirect(303, target);
    response.status(200).set(PAGE_HEADERS).send(loginPage(target));
  }

  @Post('login')
  login(@Body() body: unknown, @Req() request: Request, @Res() response: Response): void {
    const form = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const target = safeReturnPath(form.next);
    if (this.keys.length === 0) return response.redirect(303, target);
    const key = typeof form.key === 'string' ? form.key.trim() : '';
    if (!key || !keyMatches(key, this.keys)) {
      this.logger.warn(`dashboard login refused from ${request.ip ?? 'unknown address'}`);
      response
        .status(401)
        .set(PAGE_HEADERS)
        .send(loginPage(target, key ? 'That API key is not valid.' : 'Enter an API key.'));
      return;
    }
    const { sessionTtlSeconds, cookieSecret, cookieSecure } = this.config.admin;
    response.setHeader(
      'Set-Cookie',
      sessionCookie(signSession(cookieSecret, Date.now(), sessionTtlSeconds), {
        maxAgeSeconds: sessionTtlSeconds,
        secure: cookieSecure || request.secure,
      }),
    );
    response.setHeader('Cache-Control', 'no-store');
    response.redirect(303, target);
  }

  @Post('logout')
  logout(@Req() request: Request, @Res() response: Response): void {
    response.setHeader('Set-Cookie', clearedSessionCookie(this.config.admin.cookieSecure || request.secure));
    response.redirect(303, '/admin/login');
  }
}
