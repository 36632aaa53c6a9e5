/**
 * The operations of openapi.yaml, with validators built from its own schemas, and
 * fast-check arbitraries of input that those schemas refuse: path parameters, query
 * strings, header values and JSON bodies. Every arbitrary here yields only values the
 * document calls malformed, so that a request carrying one must be refused.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse } from 'yaml';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formats from 'ajv-formats';

const TEXT = readFileSync(new URL('../../openapi.yaml', import.meta.url), 'utf8');
const SPEC = parse(TEXT);
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

const ajv = new Ajv2020({ strict: false });
formats.default(ajv);
// The document is one schema; its local references are made absolute (as in openapi.test.ts).
ajv.addSchema({ ...JSON.parse(JSON.stringify(SPEC).replaceAll('"$ref":"#/', '"$ref":"openapi#/')), $id: 'openapi' });

type Json = any;

/** Follows `$ref`s to what they name. */
function deref(o: Json): Json {
  return o?.$ref ? deref(o.$ref.slice(2).split('/').reduce((x: Json, k: string) => x[k], SPEC)) : o;
}

/** A validator of a schema of the document. */
function validator(schema: Json): (v: unknown) => boolean {
  const v = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', '"$ref":"openapi#/')));
  return (x) => v(x) as boolean;
}

export interface Param {
  name: string;
  schema: Json;
  /** Whether the document takes this (decoded) value. */
  valid(v: string): boolean;
}

export interface Body {
  contentType: 'application/json' | 'application/octet-stream';
  required: boolean;
  /** The request schema's name under components/schemas, for JSON bodies. */
  schemaName: string | null;
  valid(v: unknown): boolean;
}

/** Which limit a body's 413 names. */
export type Limit = 'json' | 'store' | 'plan' | 'blob';

export interface Operation {
  id: string;
  method: string;
  /** As in the document: `/v1/clusters/{clusterId}/…`. */
  path: string;
  tags: string[];
  pathParams: Param[];
  queryParams: Param[];
  /** Header parameters, in lower case. */
  headers: Set<string>;
  body: Body | null;
  limit: Limit | null;
  /** Status -> the name of the response component it refers to ('' when described in place). */
  answers: Map<string, string>;
}

/** `wait` is "at most 5m; anything else is a 400" (parameter BlockingWait), beyond its pattern. */
function withinWaitLimit(v: string): boolean {
  const m = /^([0-9]{1,9})(ms|s|m)$/.exec(v);
  return m !== null && Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000) <= 300_000;
}

function param(p: Json): Param {
  const check = validator(p.schema);
  const valid = p.name === 'wait' ? (v: string) => check(v) && withinWaitLimit(v) : check;
  return { name: p.name, schema: deref(p.schema), valid };
}

function limitOf(op: Json): Limit | null {
  const r = op.responses['413'];
  if (!r) return null;
  if (r.$ref?.endsWith('/StoreBodyTooLarge')) return 'store';
  if (r.$ref?.endsWith('/PayloadTooLarge')) return 'json';
  const said = r.description as string;
  if (said.includes('PLAN_MAX_BYTES')) return 'plan';
  if (said.includes('BLOB_MAX_BYTES')) return 'blob';
  throw new Error(`${op.operationId}: which limit does its 413 name?`);
}

function bodyOf(op: Json): Body | null {
  if (!op.requestBody) return null;
  const rb = deref(op.requestBody);
  const [contentType, media] = Object.entries(rb.content)[0] as [Body['contentType'], Json];
  const ref: string | undefined = media.schema.$ref;
  return {
    contentType,
    required: rb.required === true,
    schemaName: contentType === 'application/json' && ref ? ref.split('/').pop()! : null,
    valid: contentType === 'application/json' ? validator(media.schema) : () => true,
  };
}

/** Every operation of openapi.yaml. */
export const OPERATIONS: Operation[] = Object.entries(SPEC.paths as Record<string, Json>).flatMap(([path, item]) =>
  METHODS.filter((m) => item[m]).map((m): Operation => {
    const op = item[m];
    const params = [...(item.parameters ?? []), ...(op.parameters ?? [])].map(deref);
    const inPlace = (where: string) => params.filter((p: Json) => p.in === where);
    return {
      id: op.operationId,
      method: m.toUpperCase(),
      path,
      tags: op.tags ?? [],
      pathParams: inPlace('path').map(param),
      queryParams: inPlace('query').map(param),
      headers: new Set(inPlace('header').map((p: Json) => (p.name as string).toLowerCase())),
      body: bodyOf(op),
      limit: limitOf(op),
      answers: new Map(Object.entries(op.responses as Record<string, Json>).map(([status, r]) => [status, String(r.$ref ?? '').split('/').pop()!])),
    };
  }),
);

/** The pattern of a header parameter of the document (components/parameters/<name>). */
export function headerPattern(name: string): RegExp {
  return new RegExp(deref(SPEC.components.parameters[name]).schema.pattern);
}

/** A schema of components/schemas, its references left as they are. */
export function schemaNamed(name: string): Json {
  return SPEC.components.schemas[name];
}

// ---------------------------------------------------------------------------------------
// Malformed path parameters

/** Characters that no path parameter allows, some of them path or encoding tricks. */
const BAD_CHARS = ['/', '\\', '\0', ' ', '%', '{', '}', ':', '?', '#', '+', '~', '!', '*', '\n', '\t', 'é', 'а', '\u202e', '\ufeff', '😀', '\u00a0'];

const TRICKY = [
  '', ' ', '...', '_', '-', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'null', 'undefined',
  'NaN', '-1', '\0', 'a\0b', '%00', '%2e%2e', '%2E%2E%2F', '%2F', 'a/b', '../x', 'x/..', '..%2F..', '{x}', 'a}b', '*',
  'é', '日本語', '😀', 'jobmanager', 'Dispatcher', 'DISPATCHER', 'dispatcher ', 'dispatcher/', 'jobmanager/0123456789abcdef0123456789abcdef',
  '0123456789abcdef0123456789abcde', '0123456789abcdef0123456789abcdef0', '0123456789abcdef0123456789abcdeg', '0x123456789abcdef0123456789abcdef',
  'a'.repeat(65), 'a'.repeat(201), 'b'.repeat(1100),
];

/** Valid values of a parameter (a lookahead, which fast-check cannot generate, is left to a filter). */
function validValues(p: Param): fc.Arbitrary<string> {
  if (p.schema.enum) return fc.constantFrom(...(p.schema.enum as string[]));
  const pattern = (p.schema.pattern as string).replace(/\(\?![^)]*\)/g, '');
  return fc.stringMatching(new RegExp(pattern)).filter((v) => p.valid(v));
}

/** A valid value, bent: a bad character in, a piece cut off, more of it, another case. A
 * valid value may be empty (`?consistent`), which has no last position to bend. */
function bent(p: Param): fc.Arbitrary<string> {
  return validValues(p).chain((v) => {
    const last = Math.max(0, v.length - 1);
    return fc.oneof(
      fc.tuple(fc.nat(v.length), fc.constantFrom(...BAD_CHARS)).map(([i, c]) => v.slice(0, i) + c + v.slice(i)),
      fc.tuple(fc.nat(last), fc.constantFrom(...BAD_CHARS)).map(([i, c]) => v.slice(0, i) + c + v.slice(i + 1)),
      fc.nat(last).map((n) => v.slice(0, n)),
      fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 4 }).map((s) => v + s),
      fc.integer({ min: 2, max: 40 }).map((n) => v.repeat(n)),
      fc.constant(v.toUpperCase()),
    );
  });
}

/** Values a path parameter refuses; `.` and `..` are left to the raw tricks (clients resolve them). */
export function badPathValue(p: Param): fc.Arbitrary<string> {
  return fc
    .oneof(
      { arbitrary: fc.constantFrom(...TRICKY), weight: 2 },
      { arbitrary: bent(p), weight: 3 },
      { arbitrary: fc.string({ unit: 'binary', maxLength: 40 }), weight: 1 },
      { arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }), weight: 1 },
    )
    .filter((v) => v !== '.' && v !== '..' && !p.valid(v));
}

/**
 * Path tricks sent byte for byte over a socket, in place of one parameter: dot segments
 * (plain, encoded, overlong UTF-8), encoded and raw separators, NUL, bad escapes, raw
 * bytes. None holds `?` or `#`, which would end the path itself.
 */
export const RAW_TRICKS = [
  '.', '..', '%2e', '%2e%2e', '%2E%2E', '.%2e', '%2e.', '../..', 'a/..', '../a', 'a/../b', '..%2f..', '%2e%2e%2f%2e%2e',
  '%2F', 'a%2Fb', '%5C', 'a\\b', '\\..\\', '%00', 'a%00b', '%', '%zz', '%E0%A4%A', '%C0%AE%C0%AE', '%FF', 'é', '\0',
  ' ', '\t', ';', 'a;b', '//', 'a//b',
];

// ---------------------------------------------------------------------------------------
// Malformed query strings

const UNKNOWN_KEYS = ['__proto__', 'constructor', 'prototype', '__proto__[polluted]', 'constructor[prototype][polluted]', '__proto__.polluted', 'foo', '', 'INDEX', 'index[]', 'wait ', ' index'];

/** The query string's name/value pairs, and whether the document calls them malformed. */
function malformedQuery(params: Param[], pairs: Array<[string, string]>): boolean {
  const byName = new Map(params.map((p) => [p.name, p]));
  const seen = new Set<string>();
  for (const [k, v] of pairs) {
    const p = byName.get(k);
    if (!p || seen.has(k) || !p.valid(v)) return true;
    seen.add(k);
  }
  return false;
}

function badQueryValue(p: Param): fc.Arbitrary<string> {
  return fc
    .oneof(
      fc.constantFrom('', ' ', '-1', '1.5', '1e3', '0x10', '+1', '99999999999999999', '1'.repeat(40), '10', '6m', '301s', '300001ms', '999999999m', 'true', 'null', '[]', 'dirty,clean', 'DIRTY', 'dispatcher,', ',dispatcher', 'jobmanager/xyz', '__proto__', 'é', '\0', '１２'),
      bent(p),
      fc.string({ unit: 'grapheme-ascii', maxLength: 20 }),
    )
    .filter((v) => !p.valid(v));
}

/** Query strings a route with these parameters refuses: bad values, a parameter twice, unknown names. */
export function badQuery(params: Param[]): fc.Arbitrary<Array<[string, string]>> {
  const entry = fc.oneof(
    fc.constantFrom(...params).chain((p) => badQueryValue(p).map((v): Array<[string, string]> => [[p.name, v]])),
    fc.constantFrom(...params).chain((p) => validValues(p).map((v): Array<[string, string]> => [[p.name, v], [p.name, v]])),
    fc.tuple(fc.constantFrom(...UNKNOWN_KEYS), fc.string({ maxLength: 8 })).map(([k, v]): Array<[string, string]> => [[k, v]]),
    fc.constantFrom(...params).chain((p) => validValues(p).map((v): Array<[string, string]> => [[p.name, v]])),
  );
  return fc
    .array(entry, { minLength: 1, maxLength: 4 })
    .map((es) => es.flat())
    .filter((pairs) => malformedQuery(params, pairs));
}

// ---------------------------------------------------------------------------------------
// Malformed header values

/** Header values a pattern refuses. None starts or ends with a space or tab: HTTP strips those (RFC 9110 §5.5). */
export function badHeaderValue(pattern: RegExp, validSample: string): fc.Arbitrary<string> {
  return fc
    .oneof(
      fc.constantFrom('', '-1', '+1', '1e5', '0x1f', '1.5', '１２', '12345678901234567', 'Override', 'OVERRIDE', 'over ride', 'override,1', 'override x', 'null', 'true', '[1]', '{"a":1}', '__proto__', 'constructor', 'NaN', 'é', 'a b', 'a\0b', 'a\x7fb', 'a\x01b'),
      fc.tuple(fc.nat(validSample.length), fc.constantFrom(' ', '\t', ',', 'é', '\x7f', '\0', '\x1b', 'g', '-', '😀')).map(([i, c]) => validSample.slice(0, i) + c + validSample.slice(i)),
      fc.string({ unit: 'binary-ascii', maxLength: 30 }),
      fc.string({ unit: 'grapheme', maxLength: 10 }),
      fc.integer({ min: 256, max: 2000 }).map((n) => 'k'.repeat(n)),
      fc.integer({ min: 17, max: 40 }).map((n) => '7'.repeat(n)),
    )
    .filter((v) => !/^[ \t]|[ \t]$/.test(v) && !pattern.test(v));
}

// ---------------------------------------------------------------------------------------
// Malformed JSON bodies

/** An own property, even when named `__proto__`. */
function withKey(o: object, key: string, value: unknown): Record<string, unknown> {
  return Object.defineProperty({ ...o }, key, { value, enumerable: true, writable: true, configurable: true });
}

function nested(depth: number, leaf: unknown = 1): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

/** What a JSON parser that guards against prototype poisoning (secure-json-parse) refuses.
 * Iterative: bodies may nest deeper than the stack. */
function poisoned(value: unknown): boolean {
  const todo = [value];
  while (todo.length) {
    const v = todo.pop();
    if (v === null || typeof v !== 'object') continue;
    if (Object.hasOwn(v, '__proto__')) return true;
    const ctor = (v as Record<string, unknown>).constructor;
    if (Object.hasOwn(v, 'constructor') && ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) return true;
    todo.push(...Object.values(v));
  }
  return false;
}

/** Whether a JSON text is malformed for a body: not JSON, refused by the schema, or poisoned. */
export function malformedJson(body: Body, text: string): boolean {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return true;
  }
  return !body.valid(v) || poisoned(v);
}

const POISON: Array<[string, unknown]> = [
  ['__proto__', { polluted: 'yes' }],
  ['__proto__', null],
  ['constructor', { prototype: { polluted: 'yes' } }],
  ['prototype', { polluted: 'yes' }],
  ['constructor', 'x'],
  ['a', JSON.parse('{"b":{"__proto__":{"polluted":"yes"}}}')],
];

const hugeString = fc.oneof(
  fc.integer({ min: 129, max: 70_000 }).map((n) => 'x'.repeat(n)),
  fc.integer({ min: 1, max: 5000 }).map((n) => '😀'.repeat(n)),
  fc.string({ unit: 'binary', minLength: 200, maxLength: 600 }),
);

/** JSON texts a body's schema refuses: other types, fields missing, of the wrong type, extra, huge, deep or poisoned. */
export function badJsonText(body: Body, base: Record<string, unknown>, schema: Json): fc.Arbitrary<string> {
  const props = Object.keys(schema.properties ?? {});
  const fields = props.length ? props : ['x'];
  const required: string[] = schema.required ?? [];
  const anyJson = fc.jsonValue({ maxDepth: 3 });
  const field = fc.constantFrom(...fields);
  const values: Array<fc.Arbitrary<unknown>> = [
    anyJson,
    fc.constantFrom(null, true, false, 0, -1, 1e308, 'x', '', [], [base], [[]]),
    fc.tuple(field, anyJson).map(([k, v]) => withKey(base, k, v)),
    fc.tuple(fc.string({ maxLength: 12 }), anyJson).map(([k, v]) => withKey(base, k, v)),
    fc.constantFrom(...POISON).map(([k, v]) => withKey(base, k, v)),
    fc.tuple(field, hugeString).map(([k, v]) => withKey(base, k, v)),
    fc.tuple(field, fc.integer({ min: 10, max: 2000 })).map(([k, d]) => withKey(base, k, nested(d))),
    fc.tuple(field, fc.constantFrom(-1, 0.5, 2 ** 53, -(2 ** 53), 1e21, 'NaN', '1', [1], { a: 1 }, true, null)).map(([k, v]) => withKey(base, k, v)),
  ];
  if (required.length) {
    values.push(fc.constantFrom(...required).map((k) => Object.fromEntries(Object.entries(base).filter(([n]) => n !== k))));
  }
  return fc
    .oneof(...values)
    .map((v) => JSON.stringify(v))
    .filter((t) => t !== undefined && malformedJson(body, t));
}

/** Texts that are not JSON at all: cut off, with junk, single quotes, comments, NaN. */
export function notJsonText(baseText: string): fc.Arbitrary<string> {
  return fc
    .oneof(
      fc.nat(baseText.length - 1).map((n) => baseText.slice(0, n)),
      fc.constantFrom(',', '}', ']', 'x', '\0', '//c', '/*c*/', ' true', '{').map((j) => baseText + j),
      fc.constantFrom(
        baseText.replaceAll('"', "'"),
        baseText.replace(/"(\w+)":/g, '$1:'),
        baseText.replace(/}$/, ',}'),
        baseText.replace(/}$/, ',"x":NaN}'),
        baseText.replace(/}$/, ',"x":Infinity}'),
        baseText.replace(/}$/, ',"x":undefined}'),
        baseText.replace(/}$/, ',"x":0x10}'),
        `/*c*/${baseText}`,
        '{"a":"\\x41"}',
        '{"a":"\\u12"}',
        '["a",]',
        'undefined',
        "{'a':1}",
        '[',
        '['.repeat(5000),
      ),
      fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 40 }),
    )
    .filter((t) => !t.startsWith('\ufeff') && !parses(t));
}

function parses(t: string): boolean {
  try {
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
}

/** Content types other than `accepted` (compared as media types are, without parameters or case). */
export function otherContentType(accepted: string): fc.Arbitrary<string> {
  return fc
    .oneof(
      fc.constantFrom(
        'text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=xyz',
        'application/xml', 'text/json', 'application/x-json', 'application/json-patch+json', 'application/merge-patch+json',
        'application/jsonx', 'application/json5', 'application/octet-stream', 'application/json', 'image/png', '*/*',
        'application/*', 'json', 'application', 'text/html', 'application/x-octet-stream', 'binary/octet-stream',
      ),
      fc.stringMatching(/^[a-z]{1,12}\/[a-z0-9.+-]{1,20}$/),
    )
    .filter((t) => t.split(';')[0].trim().toLowerCase() !== accepted);
}
