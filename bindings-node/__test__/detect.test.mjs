// Detection and redaction from Node: UTF-16 offsets, formats, error codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const kt = require('../index.js');

test('scan reports UTF-16 offsets (emoji and CJK before the value)', () => {
  const text = '😀😀 客户邮箱 li.wei@example.cn, call (415) 555-0132';
  const spans = kt.scan(text);
  assert.deepEqual(spans.map((s) => s.type), ['EMAIL', 'PHONE']);
  assert.deepEqual(spans.map((s) => text.slice(s.start, s.end)), ['li.wei@example.cn', '(415) 555-0132']);
});

test('entities limit the types; an unknown one is invalid_argument', () => {
  assert.deepEqual(kt.scan('SSN 123-45-6789, mail a@b.co', ['EMAIL']).map((s) => s.type), ['EMAIL']);
  assert.throws(() => kt.scan('x', ['SOCIAL']), (e) => e.code === 'invalid_argument');
});

test('redact formats', () => {
  const text = 'SSN 123-45-6789, mail a@b.co';
  assert.equal(kt.redact(text), 'SSN [US_SSN], mail [EMAIL]');
  assert.equal(kt.redact(text, { format: 'mask' }), 'SSN ***********, mail ******');
  const h = kt.redact(text, { format: 'hash', hashKey: 'k' });
  assert.equal(h, kt.redact(text, { format: 'hash', hashKey: 'k' }));
  assert.notEqual(h, kt.redact(text, { format: 'hash', hashKey: 'other' }));
  assert.throws(() => kt.redact(text, { format: 'sparkle' }), (e) => e.code === 'invalid_argument');
});
