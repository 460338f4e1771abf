import type { FastifyInstance } from 'fastify';

/**
 * JSON bodies as Fastify parses them (prototype poisoning refused, malformed JSON a 400), except
 * that an empty body is no body: curl scripts send `content-type: application/json` on the POSTs
 * that take none (promote, pause, resume, rollback), and Fastify would refuse those with
 * FST_ERR_CTP_EMPTY_JSON_BODY. A route whose schema demands a body still refuses the empty one.
 */
export function acceptEmptyJson(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  void app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text === '') done(null, undefined);
    else void parse(req, text, done);
  });
}
