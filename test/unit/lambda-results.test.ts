/** The response and request mapping of the Lambda adapter, per event source. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyEvent, toRequest } from '../../src/adapter/lambda/events.ts';
import { toResult } from '../../src/adapter/lambda/results.ts';
import { fixture } from '../helpers/lambda-events.ts';

const withCookies = () => {
  const headers = new Headers({ 'content-type': 'application/json' });
  headers.append('set-cookie', 'a=1; Path=/');
  headers.append('set-cookie', 'b=2; Path=/');
  return new Response('{"ok":true}', { status: 201, headers });
};

describe('Lambda response mapping', () => {
  it('HTTP API v2 and Function URLs: cookies array, single-value headers', async () => {
    const r = await toResult(withCookies(), 'apigw-v2', false, false);
    assert.deepEqual(r.cookies, ['a=1; Path=/', 'b=2; Path=/']);
    assert.equal(r.headers!['set-cookie'], undefined);
    assert.equal(r.statusCode, 201);
  });

  it('REST and ALB multi-value: every Set-Cookie in multiValueHeaders', async () => {
    const rest = await toResult(withCookies(), 'apigw-v1', true, false);
    assert.deepEqual(rest.multiValueHeaders!['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
    const alb = await toResult(withCookies(), 'alb', true, false);
    assert.equal(alb.statusDescription, '201 Created');
    assert.deepEqual(alb.multiValueHeaders!['set-cookie'], ['a=1; Path=/', 'b=2; Path=/']);
  });

  it('ALB single-value: each Set-Cookie under its own casing of the name', async () => {
    const r = await toResult(withCookies(), 'alb', false, false);
    const cookieKeys = Object.keys(r.headers!).filter((k) => k.toLowerCase() === 'set-cookie');
    assert.equal(cookieKeys.length, 2);
    assert.deepEqual(cookieKeys.map((k) => r.headers![k]).sort(), ['a=1; Path=/', 'b=2; Path=/']);
  });

  it('base64-encodes binary bodies and keeps text as text', async () => {
    const png = new Response(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 255]), { headers: { 'content-type': 'image/png' } });
    const r = await toResult(png, 'apigw-v2', false, false);
    assert.equal(r.isBase64Encoded, true);
    assert.deepEqual([...Buffer.from(r.body, 'base64')], [0x89, 0x50, 0x4e, 0x47, 0, 255]);
    const svg = await toResult(new Response('<svg/>', { headers: { 'content-type': 'image/svg+xml' } }), 'apigw-v2', false, false);
    assert.equal(svg.isBase64Encoded, false);
  });

  it('sends no body for HEAD', async () => {
    const r = await toResult(new Response('x', { headers: { 'content-type': 'text/plain' } }), 'apigw-v2', false, true);
    assert.equal(r.body, '');
  });
});

describe('Lambda request mapping', () => {
  it('keeps repeated query keys (v2 raw string, v1 multi-value maps)', () => {
    const v2 = classifyEvent(fixture('synthetic-v2-named-stage-get-analytics-query.json'));
    assert.equal(v2.type, 'http');
    const url = new URL(toRequest((v2 as any).request).request.url);
    assert.deepEqual(url.searchParams.getAll('model'), ['gpt-4o', 'claude']);
    const v1 = classifyEvent(fixture('apigw-v1-rest-aws-docs-input-format.json'));
    const url1 = new URL(toRequest((v1 as any).request).request.url);
    assert.deepEqual(url1.searchParams.getAll('parameter1'), ['value1', 'value2']);
  });

  it('VPC Lattice v2 (lists of values: repeated keys and headers) and v1 (snake_case, AWS sample)', () => {
    const base = fixture('vpc-lattice-v2-powertools.json') as Record<string, unknown>;
    const v2 = classifyEvent({
      ...base,
      path: '/analytics/lattice-biz',
      headers: { host: 'svc.vpc-lattice-svcs.us-east-2.on.aws', accept: ['application/json', 'text/plain'] },
      queryStringParameters: { model: ['gpt-4o', 'claude'], days: ['7'] },
    }) as any;
    assert.equal(v2.type, 'http');
    assert.equal(v2.request.source, 'vpc-lattice');
    const r2 = toRequest(v2.request).request;
    const url2 = new URL(r2.url);
    assert.equal(url2.pathname, '/analytics/lattice-biz');
    assert.deepEqual(url2.searchParams.getAll('model'), ['gpt-4o', 'claude']);
    assert.deepEqual(url2.searchParams.getAll('days'), ['7']);
    assert.equal(r2.headers.get('accept'), 'application/json, text/plain');

    const v1 = classifyEvent(fixture('vpc-lattice-v1-powertools.json')) as any;
    assert.equal(v1.type, 'http');
    assert.deepEqual([v1.request.source, v1.request.method, v1.request.routePath], ['vpc-lattice', 'GET', '/testpath']);
    const url1 = new URL(toRequest(v1.request).request.url);
    assert.equal(url1.host, 'test-lambda-service-3908sdf9u3u.dkfjd93.vpc-lattice-svcs.us-east-2.on.aws');
    assert.deepEqual([...url1.searchParams], [['order-id', '1']]);
    // A query left in the path (no map) is kept, not glued to the route.
    const inPath = classifyEvent({ raw_path: '/analytics/x?days=3&days=3', method: 'GET', headers: {} }) as any;
    assert.equal(inPath.request.routePath, '/analytics/x');
    assert.deepEqual(new URL(toRequest(inPath.request).request.url).searchParams.getAll('days'), ['3', '3']);
  });

  it('joins multi-value headers and passes v2 cookies as a Cookie header', () => {
    const v1 = classifyEvent(fixture('apigw-v1-rest-aws-docs-input-format.json')) as any;
    assert.equal(toRequest(v1.request).request.headers.get('header2'), 'value1, value2');
    const v2 = classifyEvent(fixture('apigw-v2-http-api-console-named-stage-default.json')) as any;
    assert.match(toRequest(v2.request).request.headers.get('cookie')!, /s_fid=.*; regStatus=pre-register/);
  });

  it('strips the stage and the console route prefix, and keeps what it stripped for links', () => {
    const e = classifyEvent(fixture('synthetic-v2-named-stage-get-health.json')) as any;
    assert.equal(e.request.routePath, '/health');
    assert.equal(e.request.prefix, '/default/mlops-service-lambda');
    const rest = classifyEvent(fixture('synthetic-v1-rest-prod-stage-post-track.json')) as any;
    assert.equal(rest.request.routePath, '/track');
    assert.equal(rest.request.prefix, '/prod');
  });

  it('does not strip a route that is one of the service paths', () => {
    const e = fixture('apigw-v2-http-api-default-stage-aws-lambda-go.json');
    e.routeKey = 'GET /health';
    e.requestContext.routeKey = 'GET /health';
    e.rawPath = '/health';
    const r = classifyEvent(e) as any;
    assert.equal(r.request.routePath, '/health');
    assert.equal(r.request.prefix, '');
  });

  it('drops GET bodies and replaces an invalid host', () => {
    const e = classifyEvent(fixture('function-url-aws-docs.json')) as any;
    const { request } = toRequest(e.request);
    assert.equal(new URL(request.url).hostname, 'lambda.invalid');
    const get = classifyEvent(fixture('apigw-v1-rest-aws-docs-input-format.json')) as any;
    assert.equal(toRequest(get.request).request.body, null);
  });
});
