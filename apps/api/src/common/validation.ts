import { ValidationPipe, type ValidationPipeOptions } from '@nestjs/common';
import { Transform } from 'class-transformer';
import { validationExceptionFactory } from './http-errors.js';
import { parseDecimalInteger, parseDecimalNumber } from './strict-input.js';

/** The one set of validation options: the global pipe's, and validateParams' below. */
export const VALIDATION_OPTIONS: ValidationPipeOptions = {
  transform: true,
  whitelist: true,
  forbidNonWhitelisted: true,
  exceptionFactory: validationExceptionFactory,
};

const pipe = new ValidationPipe(VALIDATION_OPTIONS);

/**
 * Validates and converts parameters that do not arrive through a Nest parameter decorator (the form
 * fields of a multipart upload, a query whose DTO depends on the content type) with the DTO's
 * class-validator rules and the same messages as the global pipe: a 400 listing what to fix.
 */
export async function validateParams<T extends object>(
  type: new () => T,
  plain: Record<string, unknown>,
): Promise<T> {
  return (await pipe.transform({ ...plain }, { type: 'query', metatype: type })) as T;
}

/**
 * Converts an integer parameter given as text (query string, form field, JSON string) from plain
 * decimal digits only; other text stays as it is for `@IsInt` to refuse. A JSON number is a number.
 * Used instead of `@Type(() => Number)`, whose `Number()` takes `0x1`, `+1`, `1e0`, `' 1'` and `true`.
 */
export const DecimalInteger = (): PropertyDecorator =>
  Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' ? (parseDecimalInteger(value) ?? value) : value,
  );

/** DecimalInteger for a parameter that may have a fraction (`fps=59.94`). */
export const DecimalNumber = (): PropertyDecorator =>
  Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' ? (parseDecimalNumber(value) ?? value) : value,
  );
