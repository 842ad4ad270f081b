// Node-specific behaviour: error codes, loading from a file, non-ASCII text.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const kt = require('../index.js')
const pack = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples', 'packs', 'per-team-targeting.yaml')
const support = { user: 'agent@yourco.com', team: 'support', role: 'member', authenticated: true }

test('errors carry stable codes', () => {
  assert.throws(() => kt.Engine.fromYaml('pack: {name: x, version: "1"}\npolicies: {chain: [rbca]}\n'), (err) => {
    assert.equal(err.code, 'E001')
    assert.match(err.message, /policies\.chain\[0\]/)
    return true
  })
  const engine = kt.Engine.fromFile(pack)
  assert.throws(() => engine.evaluate(support, { messages: [] }, new kt.Store()), { code: 'invalid_request' })
  assert.throws(() => engine.evaluate({ role: 'emperor' }, { messages: [] }, new kt.Store()), { code: 'invalid_argument' })
  assert.throws(() => new kt.Store().resolveEscalation(support, 'esc_missing', 'approve', 0), { code: 'not_found' })
  assert.throws(() => kt.Engine.fromFile('/no/such/pack.yaml'), { code: 'io_error' })
})

test('non-ASCII text is redacted in place', () => {
  const engine = kt.Engine.fromFile(pack)
  const d = engine.evaluate(support, { model: 'gpt-4o', messages: [{ role: 'user', content: '日本語 🙂 mail jane@example.com ✓' }] })
  assert.equal(d.verdict, 'redact')
  assert.equal(d.request.messages[0].content, '日本語 🙂 mail [EMAIL] ✓')
})

test('effective chains per team', () => {
  const engine = kt.Engine.fromFile(pack)
  assert.deepEqual(engine.effectiveChain({ team: 'support' }), ['rbac', 'pii-detector', 'audit-logger'])
  assert.deepEqual(engine.namedTeams(), ['engineering', 'support', 'legal'])
})
