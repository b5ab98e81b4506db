import { BadRequestException } from '@nestjs/common';
import type { Request, Response } from 'express';
import {
  MAX_JSON_DEPTH,
  isPrototypeKey,
  jsonBodyProblem,
  parseDecimalInteger,
  parseDecimalNumber,
  pathProblem,
  queryProblem,
  strictInput,
} from './strict-input.js';

describe('parseDecimalInteger', () => {
  it.each([
    ['0', 0],
    ['7', 7],
    ['1920', 1920],
    ['-1', -1],
    ['999999999999999', 999_999_999_999_999],
  ])('reads %j as %d', (text, value) => {
    expect(parseDecimalInteger(text)).toBe(value);
  });

  it.each([
    '0x1',
    '0x0',
    '+1',
    '1e0',
    '1.0',
    '01',
    '-0',
    ' 1',
    '1 ',
    '',
    '-',
    'Infinity',
    'NaN',
    '1_000',
    '٣',
    '1234567890123456',
  ])('refuses %j', (text) => {
    expect(parseDecimalInteger(text)).toBeNull();
  });
});

describe('parseDecimalNumber', () => {
  it.each([
    ['30', 30],
    ['59.94', 59.94],
    ['0.5', 0.5],
  ])('reads %j as %d', (text, value) => {
    expect(parseDecimalNumber(text)).toBe(value);
  });

  it.each(['0x1e', '+30', '3e1', '.5', '5.', '030', ' 30', '', 'Infinity'])('refuses %j', (text) => {
    expect(parseDecimalNumber(text)).toBeNull();
  });
});

describe('prototype keys', () => {
  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'])(
    '%s is one',
    (name) => expect(isPrototypeKey(name)).toBe(true),
  );

  it.each(['codec', 'foo', 'proto', 'tostring', ''])('%j is not', (name) =>
    expect(isPrototypeKey(name)).toBe(false),
  );

  it('query: plain and bracketed names, encoded or not', () => {
    expect(queryProblem('codec=png&width=8')).toBeNull();
    expect(queryProblem('')).toBeNull();
    expect(queryProblem('codec=png&__proto__=1')).toMatch(/query parameter "__proto__" is not accepted/);
    expect(queryProblem('toString=1')).toMatch(/"toString"/);
    expect(queryProblem('%68asOwnProperty=1')).toMatch(/"hasOwnProperty"/);
    expect(queryProblem('a[constructor][prototype]=1')).toMatch(/"constructor"/);
    expect(queryProblem('a.__proto__.b=1')).toMatch(/"__proto__"/);
    // Values are data, not names.
    expect(queryProblem('next=__proto__')).toBeNull();
  });

  it('path: a segment, decoded', () => {
    expect(pathProblem('/v1/jobs/AAAAAAAAAAAAAAAA/outputs/0')).toBeNull();
    expect(pathProblem('/v1/streams/__proto__')).toMatch(/path segment "__proto__" is not accepted/);
    expect(pathProblem('/v1/jobs/x/outputs/%74oString')).toMatch(/"toString"/);
    expect(pathProblem('/v1/jobs/%E0%A4%A')).toBeNull();
  });
});

describe('jsonBodyProblem', () => {
  const nested = (depth: number): unknown => JSON.parse('['.repeat(depth) + ']'.repeat(depth));

  it('takes flat and moderately nested bodies, and non-objects', () => {
    expect(jsonBodyProblem({ codec: 'png', width: 8, list: [1, { a: [2] }] })).toBeNull();
    expect(jsonBodyProblem(nested(MAX_JSON_DEPTH))).toBeNull();
    expect(jsonBodyProblem(undefined)).toBeNull();
    expect(jsonBodyProblem('text')).toBeNull();
  });

  it('refuses a body nested deeper than the bound, without recursing (5000 and 30000 levels)', () => {
    expect(jsonBodyProblem(nested(MAX_JSON_DEPTH + 1))).toBe(
      `the JSON body is nested more than ${MAX_JSON_DEPTH} levels deep`,
    );
    expect(jsonBodyProblem({ codec: nested(5000) })).toMatch(/nested more than/);
    expect(jsonBodyProblem(nested(30_000))).toMatch(/nested more than/);
  });

  it('refuses prototype keys at any level, as JSON.parse makes them (own properties)', () => {
    expect(jsonBodyProblem(JSON.parse('{"codec":"png","__proto__":{"x":1}}'))).toMatch(
      /JSON key "__proto__" is not accepted/,
    );
    expect(jsonBodyProblem({ toString: 1 })).toMatch(/"toString"/);
    expect(jsonBodyProblem([{ a: { hasOwnProperty: true } }])).toMatch(/"hasOwnProperty"/);
    // As values they are plain strings.
    expect(jsonBodyProblem({ codec: '__proto__' })).toBeNull();
  });
});

describe('strictInput middleware', () => {
  function run(originalUrl: string, body?: unknown): unknown {
    let passed: unknown = 'not called';
    strictInput()({ originalUrl, body } as Request, {} as Response, (error?: unknown) => (passed = error));
    return passed;
  }

  it('passes a clean request on', () => {
    expect(run('/v1/streams?x=1', { codec: 'png' })).toBeUndefined();
    expect(run('/health/live')).toBeUndefined();
  });

  it('answers 400 for the path, the query, then the body', () => {
    for (const [url, body, message] of [
      ['/v1/jobs/constructor', undefined, /path segment "constructor"/],
      ['/v1/jobs?__proto__=1', undefined, /query parameter "__proto__"/],
      ['/v1/streams', { toString: 1 }, /JSON key "toString"/],
      ['/v1/streams', JSON.parse('['.repeat(5000) + ']'.repeat(5000)), /nested more than/],
    ] as const) {
      const error = run(url, body);
      expect(error).toBeInstanceOf(BadRequestException);
      expect((error as Error).message).toMatch(message);
    }
  });
});
