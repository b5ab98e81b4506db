import { createParamDecorator, UnauthorizedException, type ExecutionContext } from '@nestjs/common';
import { DEFAULT_TENANT, type Principal } from './key-ring.js';

const principals = new WeakMap<object, Principal>();

/** Set by the guard once the request's key is checked. */
export function attachPrincipal(request: object, principal: Principal): void {
  principals.set(request, principal);
}

export function principalOf(request: object): Principal {
  const principal = principals.get(request);
  if (!principal) throw new UnauthorizedException('an API key is required: Authorization: Bearer <key>');
  return principal;
}

/** The calling principal, as a controller parameter. */
export const Caller = createParamDecorator((_data: unknown, context: ExecutionContext) =>
  principalOf(context.switchToHttp().getRequest<object>()),
);

/**
 * The ownership rule, for jobs and streams alike: an operator sees everything, a tenant what it owns.
 * Records made before tenancy carry no owner: they belong to the tenant of plain keys.
 */
export function visibleTo(principal: Principal, owner: string | null | undefined): boolean {
  return principal.operator || principal.tenant === (owner ?? DEFAULT_TENANT);
}
