// Runs the shared conformance vectors (conformance/vectors/*.json) through the Node API.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'

const require = createRequire(import.meta.url)
const kt = require('../index.js')

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const vectorsDir = join(root, 'conformance', 'vectors')
const cases = readdirSync(vectorsDir)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .flatMap((f) => JSON.parse(readFileSync(join(vectorsDir, f), 'utf8')).cases.map((c) => [f, c]))

const packSource = (c) => c.pack_yaml ?? readFileSync(join(root, 'examples', 'packs', `${c.pack}.yaml`), 'utf8')
const substitute = (v, ids) => (v === '$first' ? ids[0] ?? 'none' : v === '$last' ? ids.at(-1) ?? 'none' : v)

function check(decision, expect, forwarded) {
  const out = []
  for (const key of ['verdict', 'status', 'reason', 'escalation_id']) {
    if (key in expect && decision[key] !== expect[key]) out.push(`${key}: expected ${expect[key]}, got ${decision[key]}`)
  }
  for (const key of ['chain', 'audit']) {
    if (key in expect && !isDeepStrictEqual(decision[key], expect[key])) {
      out.push(`${key}: expected ${JSON.stringify(expect[key])}, got ${JSON.stringify(decision[key])}`)
    }
  }
  const error = decision.error ?? {}
  if ('code' in expect && (error.code ?? 'none') !== expect.code) out.push(`code: expected ${expect.code}, got ${error.code ?? 'none'}`)
  if ('policy' in expect && error.policy !== expect.policy) out.push(`policy: expected ${expect.policy}, got ${error.policy}`)
  if ('entities' in expect) {
    const got = {}
    for (const r of decision.results) for (const [k, n] of Object.entries(r.entities ?? {})) got[k] = (got[k] ?? 0) + n
    if (!isDeepStrictEqual(got, expect.entities)) out.push(`entities: expected ${JSON.stringify(expect.entities)}, got ${JSON.stringify(got)}`)
  }
  const text = JSON.stringify(forwarded)
  for (const s of expect.forwarded_contains ?? []) if (!text.includes(s)) out.push(`forwarded lacks ${s}`)
  for (const s of expect.forwarded_excludes ?? []) if (text.includes(s)) out.push(`forwarded still holds ${s}`)
  return out
}

test('there are enough vectors', () => assert.ok(cases.length >= 40))

for (const [file, c] of cases) {
  test(`${file}: ${c.name}`, () => {
    const source = packSource(c)
    if (c.expect_pack_error) {
      const want = c.expect_pack_error
      assert.throws(() => kt.Engine.fromYaml(source), (err) => err.code === want.code)
      const report = kt.lint(source)
      assert.equal(report.valid, false)
      const first = report.errors[0]
      assert.deepEqual([first.code, first.path, first.line, first.column], [want.code, want.path, want.line, want.column])
      return
    }
    if (c.expect_warnings) {
      const report = kt.lint(source)
      assert.equal(report.valid, true)
      assert.deepEqual(report.warnings.map((w) => w.code).sort(), c.expect_warnings)
      return
    }
    const engine = kt.Engine.fromYaml(source)
    const store = new kt.MemoryEscalations()
    const ids = []
    c.steps.forEach((step, i) => {
      if (step.op === 'evaluate' || step.op === 'evaluate_output') {
        const context = { request_id: `${c.name}#${i}`, ...(step.context ?? {}) }
        if ('escalation_id' in context) context.escalation_id = substitute(context.escalation_id, ids)
        const expect = { ...step.expect }
        if ('escalation_id' in expect) expect.escalation_id = substitute(expect.escalation_id, ids)
        let decision, forwarded
        if (step.op === 'evaluate') {
          decision = engine.evaluate(step.principal, step.request, store, context)
          forwarded = decision.request ?? step.request
        } else {
          decision = engine.evaluateOutput(step.principal, step.response, context)
          forwarded = decision.response ?? step.response
        }
        const mismatches = check(decision, expect, forwarded)
        if (decision.escalation_id && !ids.includes(decision.escalation_id)) ids.push(decision.escalation_id)
        assert.deepEqual(mismatches, [], `step ${i}`)
      } else if (step.op === 'resolve_escalation') {
        let got = null
        try {
          store.resolve(step.reviewer, substitute(step.escalation, ids), step.resolution, step.now_ms ?? 0)
        } catch (err) {
          got = err.code
        }
        assert.equal(got, step.expect.error, `step ${i}: resolve`)
      } else {
        assert.fail(`unknown op ${step.op}`)
      }
    })
  })
}
