import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, getSchemaPath, type OpenAPIObject } from '@nestjs/swagger';
import type { RequestHandler } from 'express';
import { CreateJobQuery, EncodeParams } from '../jobs/create-job.query.js';
import { ErrorDto } from './schemas.js';

type SchemaObject = Exclude<
  NonNullable<NonNullable<OpenAPIObject['components']>['schemas']>[string],
  { $ref: string }
>;

export const DOCS_PATH = 'docs';
/** Where the document and the UI live (all of them behind operatorAuth unless DOCS_PUBLIC). */
export const DOCS_ROUTES = [`/${DOCS_PATH}`, `/${DOCS_PATH}-json`, `/${DOCS_PATH}-yaml`];

/**
 * Both bodies of POST /v1/jobs. Nest's explorer cannot see them (the controller reads the request
 * stream itself), so they are written here: raw bytes, or multipart parts whose fields are EncodeParams.
 */
export function describeJobBodies(document: OpenAPIObject): void {
  const operation = document.paths['/v1/jobs']?.post;
  if (!operation) return;
  operation.requestBody = {
    required: true,
    content: {
      'application/octet-stream': {
        schema: {
          type: 'string',
          format: 'binary',
          description: 'frames x width x height x bytes-per-pixel bytes: the raw frames, concatenated',
        },
      },
      'multipart/form-data': {
        schema: {
          allOf: [
            { $ref: getSchemaPath(EncodeParams) },
            {
              type: 'object',
              required: ['frame'],
              properties: {
                frame: {
                  type: 'array',
                  items: { type: 'string', format: 'binary' },
                  description: 'one part per frame: PNG, JPEG or WebP images, all the same size',
                },
              },
            },
          ],
        },
      },
    },
  };
}

/**
 * Query parameters exploded from a DTO lose some of their schema (enums) on the way; give each the
 * schema of the DTO's property, as the components section has it.
 */
export function alignQueryWithModel(document: OpenAPIObject, path: string, model: string): void {
  const operation = document.paths[path]?.post;
  const properties = (document.components?.schemas?.[model] as SchemaObject | undefined)?.properties;
  if (!operation?.parameters || !properties) return;
  for (const parameter of operation.parameters) {
    if ('$ref' in parameter || parameter.in !== 'query') continue;
    const property = properties[parameter.name] as SchemaObject | undefined;
    if (!property) continue;
    const { description, ...schema } = property;
    parameter.schema = schema;
    parameter.description ??= description;
  }
}

/**
 * `GET /v1/streams/{id}/session`: a WebSocket upgrade that no controller serves (SessionRelay), written
 * here with the answers a refused upgrade gets.
 */
export function describeSessionRelay(document: OpenAPIObject): void {
  const error = (description: string) => ({
    description,
    content: { 'application/json': { schema: { $ref: getSchemaPath(ErrorDto) } } },
  });
  document.paths['/v1/streams/{id}/session'] = {
    get: {
      tags: ['streams'],
      summary: "A live stream's session, relayed by the API (WebSocket upgrade)",
      description:
        "The protocol of the node's data port (docs/api.md, Live sessions), relayed socket to socket by the API for " +
        'clients that cannot reach the nodes; authenticated with the API key, not the session token. When the node ' +
        'connection drops the relay closes with 4409: ask `GET /v1/streams/{id}?unreachable=<node>` for a new session.',
      security: [{ bearer: [] }, { 'api-key': [] }],
      parameters: [
        { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
        {
          name: 'since',
          in: 'query',
          required: false,
          schema: { type: 'integer', minimum: -1 },
          description:
            'the last frame whose output the client holds (-1 for none): the logged outputs after it come first',
        },
      ],
      responses: {
        101: { description: 'Switching Protocols: the session' },
        400: error('since is not an integer >= -1'),
        401: error('no valid API key'),
        404: error('unknown stream'),
        409: error('a batch stream (sessions are for mode=live), or the stream moved while it was dialled'),
        410: error('the stream is closed or ended'),
        429: error('too many wrong keys, or the node is at its live-context cap (Retry-After)'),
        502: error("the node refused the API's token (CLUSTER_SECRETS differ) or answered otherwise"),
        503: error("the stream's node is gone or did not answer (Retry-After); Redis away"),
      },
    },
  };
}

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('Encoder cluster')
    .setDescription(
      'Frames in, encoded images and video out, over a cluster of encoder nodes. With API_KEYS set, every ' +
        'route but /health/* needs `Authorization: Bearer <key>` (or `X-API-Key: <key>`).',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'one of API_KEYS' }, 'bearer')
    .addApiKey({ type: 'apiKey', in: 'header', name: 'X-API-Key', description: 'one of API_KEYS' }, 'api-key')
    .build();
  const document = SwaggerModule.createDocument(app, config, { extraModels: [EncodeParams, CreateJobQuery] });
  alignQueryWithModel(document, '/v1/jobs', 'CreateJobQuery');
  describeJobBodies(document);
  describeSessionRelay(document);
  return document;
}

/** Serves the UI at /docs and the document at /docs-json (and /docs-yaml), behind `auth` when given. */
export function setupDocs(app: INestApplication, auth: RequestHandler | null): void {
  if (auth) app.use(DOCS_ROUTES, auth);
  SwaggerModule.setup(DOCS_PATH, app, () => buildOpenApiDocument(app), {
    jsonDocumentUrl: `${DOCS_PATH}-json`,
    yamlDocumentUrl: `${DOCS_PATH}-yaml`,
    customSiteTitle: 'Encoder cluster API',
  });
}
