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
const substitute = (v, ids, tickets = [], keys = new Map()) =>
  v === '$first' ? ids[0] ?? 'none'
    : v === '$last' ? ids.at(-1) ?? 'none'
      : v === '$ticket' ? tickets.at(-1) ?? 'none'
        : typeof v === 'string' && v.startsWith('$key:') ? keys.get(v.slice('$key:'.length))?.[1] ?? 'none'
          : v

// The secret of the key `team/email` (issued by the host on first use); `keys` maps a key's name
// (`team/email`, or a step's `as`) to [secret, key id].
function keySecret(store, keys, name) {
  if (keys.has(name)) return keys.get(name)[0]
  const slash = name.indexOf('/')
  assert.ok(slash > 0, 'a key is named `team/email`')
  let issued
  try {
    issued = store.admin(null, { op: 'create_key', team: name.slice(0, slash), email: name.slice(slash + 1) }, 0, 'key')
  } catch (err) {
    throw new Error(`key ${name}: ${err.message}`)
  }
  keys.set(name, [issued.key, issued.id])
  return issued.key
}

// An `admin` step's actor: null (the host), { key: 'team/email' } (what that key authenticates as
// now), or a principal.
function adminActor(store, keys, actor, now) {
  if (actor === null || actor === undefined) return null
  if ('key' in actor) {
    const status = store.authenticateStatus(keySecret(store, keys, actor.key), 'default', now)
    assert.ok('principal' in status, `the key ${actor.key} does not authenticate: ${status.refused}`)
    return status.principal
  }
  return actor
}

// An `admin` step: one command; returns the mismatches.
function adminStep(store, keys, ids, tickets, step, i) {
  const now = step.now_ms ?? 0
  const actor = adminActor(store, keys, step.actor, now)
  const command = { ...step.command }
  if (typeof command.id === 'string' && command.id.startsWith('$key:')) keySecret(store, keys, command.id.slice('$key:'.length))
  for (const field of ['id', 'team']) if (field in command) command[field] = substitute(command[field], ids, tickets, keys)
  const [result, code] = errorCode(() => store.admin(actor, command, now, `admin#${i}`))
  // a key the step made is known by its name from then on
  if (result && typeof result.key === 'string' && step.as) keys.set(step.as, [result.key, result.id])
  const want = step.expect.error ?? null
  return code === want ? [] : [`${command.op}: expected error ${want}, got ${code}`]
}

// An `authenticate` step: what the key `team/email` is refused as now (null: accepted).
function authenticateStep(store, keys, step) {
  const status = store.authenticateStatus(keySecret(store, keys, step.key), 'default', step.now_ms ?? 0)
  const [got, want] = [status.refused ?? null, step.expect.refused ?? null]
  return got === want ? [] : [`authenticate: expected refusal ${want}, got ${got}`]
}

// decimal text compared by value (the vectors' amounts are small and exact in binary)
const money = (v) => (v === null || v === undefined ? null : Number(v))

// One request through the lifecycle, the host being the provider; the report every front door
// builds the same way (see keeptrusts-core/tests/conformance.rs).
function exchangeReport(engine, store, step, budget) {
  const x = engine.begin(step.principal, step.request, store, step.context, budget)
  const provider = step.provider
  const report = { forwarded: null, text: null, usage_chunk: null }
  const finish = (result, status) => {
    const close = result && result.close ? result.close : result
    const body = result && 'body' in result ? result.body : null
    const cost = close?.draft?.cost ?? {}
    return Object.assign(report, {
      status,
      code: body?.error?.code ?? null,
      body,
      settled: close?.actual ?? null,
      overrun: Boolean(cost.overrun),
      unmetered: Boolean(cost.unmetered),
      event_status: close ? close.draft.status : null,
    })
  }
  if (x.refusal !== null) return finish(x.refusal, x.refusal.status)
  report.forwarded = x.nextCall()
  if ('fail' in provider) {
    x.failed()
    assert.equal(x.nextCall(), null)
    const r = x.exhausted(provider.fail)
    return finish(r, r.status)
  }
  if (provider.client_gone) return finish(x.abandon(), 499)
  if (provider.stream) {
    const out = provider.stream.flatMap((chunk) => x.pushChunk(chunk))
    const end = x.finishStream()
    out.push(...end.chunks)
    report.text = out.filter((c) => c.choices?.length && 'content' in c.choices[0].delta).map((c) => c.choices[0].delta.content).join('')
    report.usage_chunk = out.find((c) => 'usage' in c)?.usage ?? null
    const error = out.find((c) => 'error' in c) ?? null
    const r = finish({ body: error, close: end.close }, error ? end.close.draft.status : 200)
    return r
  }
  const r = x.answer(provider.answer)
  return finish(r, r.status)
}

function reportMismatches(report, expect) {
  const out = []
  for (const [key, want] of Object.entries(expect)) {
    const got = report[key]
    let ok
    if (key === 'forwarded') ok = Object.entries(want).every(([f, v]) => isDeepStrictEqual(got?.[f], v))
    else if (key === 'settled') ok = money(got) === money(want)
    else if (key === 'body_excludes') ok = !JSON.stringify(report.body).includes(want)
    else if (key === 'called') ok = (report.forwarded !== null) === want
    else ok = isDeepStrictEqual(got, want)
    if (!ok) out.push(`${key}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`)
  }
  return out
}

function errorCode(call) {
  try {
    return [call(), null]
  } catch (err) {
    if (!err.code) throw err
    return [null, err.code]
  }
}

// Runs a wallet, ticket, event or dashboard step; returns the mismatches.
function storeStep(store, step, last, ids, tickets) {
  const expect = step.expect
  const now = step.now_ms ?? 0
  if (step.op === 'balance') {
    const w = store.wallet(step.wallet, now)
    const got = [money(w.allocated), money(w.spent), money(w.reserved), money(w.allocated) - money(w.spent) - money(w.reserved)]
    const want = ['allocated', 'spent', 'reserved', 'available'].map((f) => money(expect[f]))
    return isDeepStrictEqual(got, want) ? [] : [`${step.wallet}: expected ${want}, got ${got}`]
  }
  if (step.op === 'verify') {
    const r = store.verify(step.org)
    return r.valid === expect.valid && r.events === expect.events ? [] : [`verify: expected ${expect.valid}/${expect.events}, got ${r.valid}/${r.events}`]
  }
  let result, code
  if (step.op === 'allocate') {
    ;[result, code] = errorCode(() => store.allocate(step.actor, step.allocation, now))
  } else if (step.op === 'complete') {
    const [principal, decision, rid, model] = last
    const options = step.served === null ? { model, nowMs: now } : { model, target: step.served.target, usage: step.served.usage, nowMs: now }
    ;[result, code] = errorCode(() => store.complete(principal, decision, rid, options))
  } else if (step.op === 'resolve_ticket') {
    ;[result, code] = errorCode(() => store.resolveTicket(step.reviewer, substitute(step.ticket, ids, tickets), step.resolution, step.charge_to ?? null, now))
  } else if (step.op === 'dashboard') {
    ;[result, code] = errorCode(() => store.dashboard(step.viewer, step.section, { team: step.team }))
  } else {
    return [`unknown op ${step.op}`]
  }
  const out = code === expect.error ? [] : [`${step.op}: expected error ${expect.error}, got ${code}`]
  if (step.op === 'complete' && code === null) {
    const s = result.settlement
    if ('charged' in expect && (s ? money(s.charged) : null) !== money(expect.charged)) out.push(`charged ${s?.charged}, expected ${expect.charged}`)
    if ('replay' in expect && s?.replay !== expect.replay) out.push(`replay: expected ${expect.replay}`)
    if ('event' in expect && ('event' in result) !== expect.event) out.push(`event written: expected ${expect.event}`)
  }
  return out
}

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
    if (c.expect_envelopes) {
      for (const row of c.expect_envelopes) {
        const got = kt.errorEnvelope(row.status, row.code, 'm', row.request_id)
        assert.deepEqual(got, { error: { type: row.type, code: row.code, message: 'm', request_id: row.request_id } }, `${row.status}`)
      }
      return
    }
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
    const store = kt.Store.memory()
    const budget = c.budget ?? false
    const ids = []
    const tickets = []
    const keys = new Map()
    let last = null
    c.steps.forEach((step, i) => {
      if (step.op === 'evaluate' || step.op === 'evaluate_output') {
        const context = { request_id: `${c.name}#${i}`, now_ms: 0, ...(step.context ?? {}) }
        for (const field of ['escalation_id', 'ticket_id']) if (field in context) context[field] = substitute(context[field], ids, tickets)
        const expect = { ...step.expect }
        if ('escalation_id' in expect) expect.escalation_id = substitute(expect.escalation_id, ids)
        let decision, forwarded
        if (step.op === 'evaluate') {
          decision = engine.evaluate(step.principal, step.request, store, context, budget)
          forwarded = decision.request ?? step.request
          last = [step.principal, decision, context.request_id, step.request.model]
        } else {
          decision = engine.evaluateOutput(step.principal, step.response, context)
          forwarded = decision.response ?? step.response
        }
        const mismatches = check(decision, expect, forwarded)
        if (decision.escalation_id && !ids.includes(decision.escalation_id)) ids.push(decision.escalation_id)
        if (decision.ticket_id) tickets.push(decision.ticket_id)
        assert.deepEqual(mismatches, [], `step ${i}`)
      } else if (step.op === 'exchange') {
        assert.deepEqual(reportMismatches(exchangeReport(engine, store, step, budget), step.expect), [], `step ${i}`)
      } else if (step.op === 'admin') {
        assert.deepEqual(adminStep(store, keys, ids, tickets, step, i), [], `step ${i}`)
      } else if (step.op === 'authenticate') {
        assert.deepEqual(authenticateStep(store, keys, step), [], `step ${i}`)
      } else if (step.op === 'resolve_escalation') {
        let got = null
        try {
          store.resolveEscalation(step.reviewer, substitute(step.escalation, ids), step.resolution, step.now_ms ?? 0)
        } catch (err) {
          got = err.code
        }
        assert.equal(got, step.expect.error, `step ${i}: resolve`)
      } else {
        assert.deepEqual(storeStep(store, step, last, ids, tickets), [], `step ${i}`)
      }
    })
  })
}
