import { ValidationPipe, type ValidationPipeOptions } from '@nestjs/common';
import { validationExceptionFactory } from './http-errors.js';

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
