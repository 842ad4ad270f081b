// Stores from Node: teams and keys, wallets, tickets, events, dashboards on memory, SQLite and
// PostgreSQL; Promise APIs off the event loop; the streaming redactor.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { randomUUID } from 'node:crypto'

const require = createRequire(import.meta.url)
const kt = require('../index.js')
// Packs shared with the Python tests.
const packs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'conformance', 'packs')

const PACK = readFileSync(join(packs, 'store.yaml'), 'utf8')
const T0 = 1_795_556_220_000

function* stores() {
  yield ['memory', kt.Store.memory()]
  yield ['sqlite', kt.Store.sqlite(join(mkdtempSync(join(tmpdir(), 'kt-')), 'kt.db'))]
  const url = process.env.KEEPTRUSTS_TEST_POSTGRES_URL
  // set by .ci/run: an unreachable server fails the test instead of skipping it
  if (url) yield ['postgres', kt.Store.postgres(url)]
}

test('a request from key to settled event, on every store', () => {
  const engine = kt.Engine.fromYaml(PACK)
  for (const [kind, store] of stores()) {
    const tag = randomUUID().slice(0, 8)
    const [org, team] = [`org-${tag}`, `support-${tag}`]
    const owner = { org, user: `root@${tag}.com`, team, role: 'owner', authenticated: true }
    assert.equal(store.createTeam(owner, team).slug, team)
    store.addMember(owner, team, `ana@${tag}.com`, 'member')
    const issued = store.createKey(owner, team, `ana@${tag}.com`)
    assert.match(issued.secret, /^kt_[0-9a-f]{64}$/)
    assert.equal(issued.key.status, 'active')
    // neither the secret nor its hash is ever shown again
    assert.ok(!('hash' in issued.key))
    assert.ok(!JSON.stringify(store.keys(team)).includes(issued.secret))
    assert.ok(!JSON.stringify(store.keys(team)).includes('hash'))
    const ana = store.authenticate(issued.secret, org)
    assert.deepEqual([ana.team, ana.role, ana.authenticated, ana.org_admin], [team, 'member', true, undefined], kind)
    assert.equal(store.authenticate('kt_' + '0'.repeat(64)), null)

    store.allocate(owner, { team, amount: 125, currency: 'USD', period: 'monthly' }, T0)
    const request = { model: 'house-model', max_tokens: 10, messages: [{ role: 'user', content: 'hello' }] }
    const d = engine.evaluate(ana, request, store, { request_id: `r1-${tag}`, now_ms: T0 })
    assert.equal(d.verdict, 'allow', kind)
    assert.equal(Number(store.wallet(`team:${team}`, T0).reserved), 99) // the bound: 86 bytes of request JSON + 3 input tokens, 10 output, at $1 a token
    const done = store.complete(ana, d, `r1-${tag}`, { model: 'house-model', target: 'house', usage: { prompt_tokens: 9, completion_tokens: 3 }, nowMs: T0 + 1 })
    assert.equal(Number(done.settlement.charged), 12)
    assert.equal(done.event.seq, 4) // after the org's four administrative events
    const again = store.complete(ana, d, `r1-${tag}`, { model: 'house-model', target: 'house', usage: { prompt_tokens: 9, completion_tokens: 3 }, nowMs: T0 + 2 })
    assert.equal(again.settlement.replay, true)
    assert.equal(again.event, undefined)
    const w = store.wallet(`team:${team}`, T0 + 3)
    assert.deepEqual([Number(w.spent), Number(w.reserved)], [12, 0], kind)
    assert.deepEqual(store.balances(ana, T0).map((x) => x.key.id), [team])
    const events = store.events(org)
    assert.deepEqual(events.slice(0, 4).map((e) => [e.admin.action, e.admin.actor]),
      ['team.create', 'member.set', 'key.create', 'wallet.allocate'].map((a) => [a, owner.user]))
    assert.equal(events.length, 5)
    assert.ok(!('admin' in events[4]))
    assert.ok(!JSON.stringify(events).includes('hello'))
    assert.ok(!JSON.stringify(events).includes(issued.secret))
    const report = store.verify(org)
    assert.deepEqual([report.valid, report.events, report.pruned, report.head.seq], [true, 5, 0, 4])
    assert.ok(store.dashboard(owner, 'spend', { team, granularity: 'month' }))
    assert.throws(() => store.dashboard({ ...ana, team: 'elsewhere' }, 'spend', { team, org }), { code: 'forbidden' })
  }
})

test("administration through the core's commands, on every store", () => {
  for (const [kind, store] of stores()) {
    const tag = randomUUID().slice(0, 8)
    const [org, team, other] = [`org-${tag}`, `support-${tag}`, `eng-${tag}`]
    const [root, lead, dev] = [`root@${tag}.com`, `lead@${tag}.com`, `dev@${tag}.com`]
    assert.equal(store.admin(null, { op: 'create_team', name: team }, null, null, org).slug, team)
    store.admin(null, { op: 'create_team', name: other }, null, null, org)
    for (const [user, role] of [[root, 'owner'], [lead, 'admin'], [dev, 'member']]) {
      store.admin(null, { op: 'set_member', team, email: user, role }, null, null, org)
    }
    const asLead = store.authenticate(store.createKey(null, team, lead).secret, org)
    assert.equal(asLead.role, 'admin')
    // the actor is what the key stands for now, and a change is its event, under the given id
    const issued = store.admin(asLead, { op: 'create_key', team, email: dev, label: 'ci' }, T0, `adm-${tag}`)
    assert.ok(issued.key.startsWith('kt_') && issued.label === 'ci' && !('hash' in issued), kind)
    const event = store.events(org).at(-1)
    assert.deepEqual([event.id, event.admin.action, event.admin.actor], [`evt_adm-${tag}`, 'key.create', lead])
    assert.ok(!JSON.stringify(store.events(org)).includes(issued.key))
    assert.throws(() => store.admin(asLead, { op: 'set_member', team, email: root, role: 'member' }), { code: 'forbidden' })
    assert.throws(() => store.admin(asLead, { op: 'set_member', team: other, email: dev, role: 'member' }), { code: 'forbidden' })
    assert.throws(() => store.admin(null, { op: 'set_member', team, email: dev, role: 'member', x: 1 }), { code: 'invalid_argument' })
    // refusals name their reason; a revoked key stops at once
    assert.equal(store.authenticateStatus(issued.key, org, T0).principal.user, dev)
    store.admin(asLead, { op: 'revoke_key', id: issued.id })
    assert.equal(store.authenticate(issued.key, org), null)
    assert.equal(store.authenticateStatus(issued.key, org).refused, 'key_revoked')
    assert.ok('refused' in store.authenticateStatus('kt_' + '0'.repeat(64), org))
    // keys() shows what became of each, never a hash
    assert.equal(store.keys(team).find((k) => k.id === issued.id).status, 'revoked')
    assert.ok(!JSON.stringify(store.keys(team)).includes('hash'))
    // createKey's options; an org admin's key says so
    const ci = store.createKey(null, team, dev, null, T0, { label: 'laptop', expiresAt: T0 + 1000 })
    assert.deepEqual([ci.key.label, ci.key.expires_at], ['laptop', T0 + 1000])
    assert.equal(store.authenticateStatus(ci.secret, org, T0 + 1000).refused, 'key_expired')
    store.admin(null, { op: 'add_org_admin', email: `ops@${tag}.com` }, null, null, org)
    const ops = store.authenticate(store.createKey(null, other, `ops@${tag}.com`).secret, org)
    assert.deepEqual([ops.org_admin, ops.role], [true, 'admin'])
    // wallets need a team or user that exists
    assert.throws(() => store.allocate(null, { team: `nobody-${tag}`, amount: 1 }), { code: 'not_found' })
    assert.equal(store.verify(org).valid, true)
  }
})

test('tickets and escalations', () => {
  const engine = kt.Engine.fromYaml(PACK.replace('[rbac, pii-detector, audit-logger]', '[rbac, human-oversight]').replace('pii-detector: { action: redact }', 'human-oversight: { require_review: true }'))
  const store = kt.Store.open(`sqlite:${join(mkdtempSync(join(tmpdir(), 'kt-')), 'kt.db')}`)
  const owner = { user: 'root@x.com', team: 'platform', role: 'owner', authenticated: true }
  const alice = { user: 'alice@x.com', team: 'support', role: 'member', authenticated: true }
  const request = { model: 'house-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }
  let d = engine.evaluate(alice, request, store, { request_id: 'e1', now_ms: T0 })
  assert.equal(d.status, 409)
  const [esc] = store.escalations(owner)
  assert.equal(esc.id, d.escalation_id)
  assert.equal(store.escalation(esc.id).status, 'pending')
  assert.throws(() => store.resolveEscalation(alice, esc.id, 'approve', T0), { code: 'forbidden' })
  store.resolveEscalation(owner, esc.id, 'approve', T0 + 1)
  d = engine.evaluate(alice, request, store, { request_id: 'e2', now_ms: T0 + 2, escalation_id: esc.id })
  assert.equal(d.status, 402)
  const [ticket] = store.tickets(owner)
  assert.equal(ticket.id, d.ticket_id)
  assert.throws(() => store.resolveTicket(owner, ticket.id, 'maybe', null, T0), { code: 'invalid_argument' })
  store.resolveTicket(owner, ticket.id, 'deny', null, T0 + 3)
  assert.equal(store.tickets(owner)[0].status, 'denied')
})

test('error codes of every family', () => {
  assert.throws(() => kt.Store.open('mysql://nope'), { code: 'store_unavailable' })
  assert.throws(() => kt.Store.sqlite('/no/such/dir/kt.db'), { code: 'store_unavailable' })
  const store = new kt.Store()
  const owner = { user: 'o@x.com', team: 't', role: 'owner', authenticated: true }
  assert.throws(() => store.allocate(owner, { team: 't', org: 'o', amount: 5 }), { code: 'invalid_argument' })
  assert.throws(() => store.allocate(owner, { team: 't', amount: 5, colour: 'red' }), { code: 'invalid_argument' })
  assert.throws(() => store.dashboard(owner, 'weather'), { code: 'invalid_argument' })
  // no wallet for a team nobody created
  assert.throws(() => store.allocate(owner, { team: 't', amount: 500 }), { code: 'not_found' })
  store.createTeam(null, 't')
  store.allocate(owner, { team: 't', amount: 500 })
  assert.throws(() => store.allocate(owner, { team: 't', amount: 5, currency: 'EUR', mode: 'top_up' }), { code: 'conflict' })
  const engine = kt.Engine.fromYaml(PACK)
  const p = { user: 'u@x.com', team: 't', role: 'member', authenticated: true }
  const d = engine.evaluate(p, { model: 'house-model', max_tokens: 1, messages: [{ role: 'user', content: 'x' }] }, store, { request_id: 'w1' })
  assert.equal(d.reservation.id, 'rsv_w1')
  assert.throws(() => new kt.Store().complete(p, d, 'w1', { target: 'house', usage: { prompt_tokens: 1, completion_tokens: 1 } }), { code: 'unknown_lease' })
})

test('Promise APIs run off the event loop: a timer keeps firing during a 10 MB scan', async () => {
  const text = 'Lorem ipsum dolor sit amet, call 415-555-0132 today. '.repeat(200_000) // ~10.6 MB
  let ticks = 0
  const timer = setInterval(() => ticks++, 1)
  const started = performance.now()
  const spans = await kt.scanAsync(text)
  const elapsed = performance.now() - started
  clearInterval(timer)
  assert.equal(spans.length, 200_000)
  assert.ok(ticks >= 3, `only ${ticks} timer ticks during a ${elapsed.toFixed(0)} ms scan`)
  await assert.rejects(kt.scanAsync('x', ['SOCIAL']), { code: 'invalid_argument' })
  assert.equal(await kt.redactAsync('mail a@b.co', { format: 'mask' }), 'mail ******')
})

test('evaluateAsync resolves decisions and rejects with codes', async () => {
  const engine = kt.Engine.fromYaml(PACK)
  const p = { user: 'u@x.com', team: 't', role: 'member', authenticated: true }
  const big = 'mail jane@example.com. '.repeat(50_000)
  const d = await engine.evaluateAsync(p, { model: 'house-model', messages: [{ role: 'user', content: big }] })
  assert.equal(d.verdict, 'redact')
  assert.ok(!JSON.stringify(d.request).includes('jane@example.com'))
  await assert.rejects(engine.evaluateAsync(p, { messages: [] }), { code: 'invalid_request' })
  await assert.rejects(engine.evaluateAsync({ role: 'emperor' }, { messages: [] }), { code: 'invalid_argument' })
})

test('the streaming redactor equals whole-text redaction for any chunking', () => {
  const text = 'Patient Maria Garcia, SSN 123-45-6789, called from (415) 555-0132 about her card 4111 1111 1111 1111. '.repeat(40)
  const whole = kt.redact(text)
  for (const size of [1, 7, 64, 1000]) {
    const s = new kt.StreamRedactor()
    let out = ''
    for (let i = 0; i < text.length; i += size) out += s.push(text.slice(i, i + size))
    out += s.finish()
    assert.equal(out, whole, `chunks of ${size}`)
    assert.ok(s.redacted)
  }
  const s = new kt.StreamRedactor({ format: 'mask', entities: ['EMAIL'] })
  assert.equal(s.push('write to a@b.co ') + s.finish(), 'write to ****** ')
})
