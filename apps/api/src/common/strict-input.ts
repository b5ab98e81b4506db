import { BadRequestException } from '@nestjs/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * What a request may carry as names and numbers, wherever they travel (query string, path, JSON body,
 * form fields): numbers in plain decimal, no names that every JavaScript object already has, and JSON
 * nested no deeper than any request of this API needs. Parsers downstream (class-transformer, qs,
 * `Number()`) each accept more than that in their own way: `Number('0x1')` is 1, a `toString` key is
 * skipped without an error, 5000 nested arrays overflow the stack.
 */

/** `__proto__`, `constructor`, `toString`, `hasOwnProperty`, ...: the names every object inherits. */
const PROTOTYPE_KEYS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

export function isPrototypeKey(name: string): boolean {
  return PROTOTYPE_KEYS.has(name);
}

/** The answer for a name that is one of them, in the words of where it was found. */
export function prototypeKeyMessage(name: string, where: string): string {
  return `${where} "${name}" is not accepted: it is a name every JavaScript object already has`;
}

// At most 15 digits: every such number is a safe integer. No plus sign, exponent, hex, spaces or
// leading zero (which some parsers read as octal).
const DECIMAL_INTEGER = /^(?:0|-?[1-9][0-9]{0,14})$/;
const DECIMAL_NUMBER = /^-?(?:0|[1-9][0-9]{0,14})(?:\.[0-9]{1,15})?$/;

/** `"42"` -> 42, `"-1"` -> -1; anything else (`"0x2a"`, `"+42"`, `"4.2e1"`, `"042"`, `" 42"`, `""`) -> null. */
export function parseDecimalInteger(text: string): number | null {
  return DECIMAL_INTEGER.test(text) ? Number(text) : null;
}

/** Like parseDecimalInteger, with an optional fraction: `"59.94"` -> 59.94. */
export function parseDecimalNumber(text: string): number | null {
  return DECIMAL_NUMBER.test(text) ? Number(text) : null;
}

/** Deeper than any body this API takes (they are flat objects) and far from any parser's stack limit. */
export const MAX_JSON_DEPTH = 32;

/**
 * Why a parsed JSON body cannot be taken (nested deeper than `maxDepth`, or a prototype name as a key
 * at any level), or null. Walks with its own stack, so a body of any shape cannot overflow this one.
 */
export function jsonBodyProblem(body: unknown, maxDepth = MAX_JSON_DEPTH): string | null {
  const pending: { value: unknown; depth: number }[] = [{ value: body, depth: 1 }];
  while (pending.length > 0) {
    const { value, depth } = pending.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > maxDepth) return `the JSON body is nested more than ${maxDepth} levels deep`;
    if (Array.isArray(value)) {
      for (const item of value) pending.push({ value: item, depth: depth + 1 });
      continue;
    }
    for (const [key, item] of Object.entries(value)) {
      if (isPrototypeKey(key)) return prototypeKeyMessage(key, 'JSON key');
      pending.push({ value: item, depth: depth + 1 });
    }
  }
  return null;
}

/**
 * Why a raw query string cannot be taken (a prototype name as a parameter, or as a part of a bracketed
 * one such as `a[__proto__]`), or null. Read from the raw string because the query parsers drop or hide
 * these names rather than refuse them.
 */
export function queryProblem(rawQuery: string): string | null {
  for (const name of new URLSearchParams(rawQuery).keys()) {
    const parts = name.split(/[[\].]/).filter((part) => part !== '');
    const bad = parts.find(isPrototypeKey);
    if (bad !== undefined) return prototypeKeyMessage(bad, 'query parameter');
  }
  return null;
}

/** Why a URL path cannot be taken (a segment that is a prototype name, once decoded), or null. */
export function pathProblem(pathname: string): string | null {
  for (const segment of pathname.split('/')) {
    const name = decoded(segment);
    if (isPrototypeKey(name)) return prototypeKeyMessage(name, 'path segment');
  }
  return null;
}

function decoded(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * Refuses (400) a request whose path, query string or JSON body breaks the rules above, ahead of every
 * route (Nest's, Bull Board's, the docs'); mounted right after the JSON body parser, so the body is
 * checked before any validation or transformation walks it.
 */
export function strictInput(): RequestHandler {
  return (request: Request, _response: Response, next: NextFunction) => {
    const url = request.originalUrl;
    const queryAt = url.indexOf('?');
    const problem =
      pathProblem(queryAt === -1 ? url : url.slice(0, queryAt)) ??
      (queryAt === -1 ? null : queryProblem(url.slice(queryAt + 1))) ??
      jsonBodyProblem(request.body);
    next(problem === null ? undefined : new BadRequestException(problem));
  };
}
