// The Express middleware with real HTTP requests against the example app.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const kt = require('../index.js')
const { createApp } = require('../examples/express-app.js')
// Packs shared with the Python tests.
const packs = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'conformance', 'packs')

const OWNER = { user: 'root@yourco.com', team: 'platform', role: 'owner', authenticated: true }
let server, base, store
const keys = {}

before(async () => {
  store = kt.Store.memory()
  for (const [team, user] of [['support', 'ana@yourco.com'], ['engineering', 'eng@yourco.com'], ['legal', 'lee@yourco.com']]) {
    store.createTeam(null, team)
    store.addMember(null, team, user, 'member')
    keys[team] = store.createKey(null, team, user).secret
    store.allocate(OWNER, { team, amount: '1.00' })
  }
  server = createApp(store).listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  base = `http://127.0.0.1:${server.address().port}`
})

after(() => server.close())

const ask = (key, text, headers = {}) =>
  fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
    body: JSON.stringify({ model: 'gpt-4o-mini', max_tokens: 50, messages: [{ role: 'user', content: text }] }),
  })

test("support's prompt is redacted before the route sees it", async () => {
  const r = await ask(keys.support, 'my SSN is 123-45-6789, mail ana@example.com')
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('x-keeptrusts-verdict'), 'redact')
  const answer = (await r.json()).choices[0].message.content
  assert.ok(!answer.includes('123-45-6789') && !answer.includes('ana@example.com'))
  assert.ok(answer.includes('[US_SSN]'))
})

test("engineering's prompt goes through and is charged at the answer's usage", async () => {
  const r = await ask(keys.engineering, 'explain this stack trace')
  assert.equal(r.status, 200)
  assert.equal(r.headers.get('x-keeptrusts-verdict'), 'allow')
  await r.json()
  const w = store.wallet('team:engineering')
  assert.ok(Math.abs(Number(w.spent) - (12 * 0.15 + 8 * 0.6) / 1e6) < 1e-12)
  assert.equal(Number(w.reserved), 0)
  assert.equal(store.verify().valid, true)
})

test('denials never reach the route', async () => {
  let r = await ask(null, 'hello')
  assert.equal(r.status, 401)
  assert.equal((await r.json()).error.code, 'unauthenticated')
  r = await ask('kt_' + '0'.repeat(64), 'hello')
  assert.equal(r.status, 401)
  await r.body?.cancel()
  r = await ask(keys.legal, 'review this contract')
  assert.equal(r.status, 409)
  assert.equal(r.headers.get('x-should-retry'), 'false')
  const escalation = (await r.json()).error.escalation_id
  store.resolveEscalation(OWNER, escalation, 'approve')
  r = await ask(keys.legal, 'review this contract', { 'x-keeptrusts-escalation-id': escalation })
  assert.equal(r.status, 200)
  await r.json()
})

test('an exhausted wallet answers 402 with a ticket; approval lets the retry through', async () => {
  store.allocate(OWNER, { team: 'support', amount: '0' })
  let r = await ask(keys.support, 'hello')
  assert.equal(r.status, 402)
  const ticket = (await r.json()).error.ticket_id
  store.resolveTicket(OWNER, ticket, 'approve')
  r = await ask(keys.support, 'hello', { 'x-keeptrusts-ticket-id': ticket })
  assert.equal(r.status, 200)
  await r.json()
  assert.ok(Number(store.wallet('team:support').spent) > 0)
})

test('bad bodies are 400 with a code', async () => {
  let r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.support}` }, body: '{not json' })
  assert.equal(r.status, 400)
  await r.body?.cancel()
  r = await fetch(`${base}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.engineering}` }, body: JSON.stringify({ model: 'gpt-4o-mini', messages: [] }) })
  assert.equal(r.status, 400)
  assert.equal((await r.json()).error.code, 'invalid_request')
})

test('without a body parser the middleware reads the body itself (and bounds it)', async () => {
  const express = require('express')
  const { keeptrusts } = require('../express.js')
  const engine = kt.Engine.fromYaml('pack: { name: raw, version: "1.0" }\npolicies: { chain: [pii-detector] }\n')
  const app = express()
  app.use(keeptrusts({ engine, principal: () => ({ user: 'u@x.com', team: 't', role: 'member', authenticated: true }), maxBody: 1024 }))
  app.post('/v1/chat/completions', (req, res) => res.json({ choices: [{ index: 0, message: { role: 'assistant', content: req.body.messages[0].content } }] }))
  const s = app.listen(0, '127.0.0.1')
  await new Promise((r) => s.once('listening', r))
  const url = `http://127.0.0.1:${s.address().port}/v1/chat/completions`
  try {
    let r = await fetch(url, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'mail a@b.co' }] }) })
    assert.equal(r.status, 200)
    assert.equal((await r.json()).choices[0].message.content, 'mail [EMAIL]')
    r = await fetch(url, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(4096) }] }) })
    assert.equal(r.status, 413)
    assert.equal((await r.json()).error.code, 'request_too_large')
  } finally {
    s.close()
  }
})

const LIFECYCLE_PACK = readFileSync(join(packs, 'lifecycle.yaml'), 'utf8')

// The one request's event (the setup's administrative events left aside).
const requestEvent = (s) => {
  const events = s.events().filter((e) => !('admin' in e))
  assert.equal(events.length, 1)
  return events[0]
}

async function lifecycleApp(route) {
  const express = require('express')
  const { keeptrusts } = require('../express.js')
  const s = kt.Store.memory()
  s.createTeam(null, 'support')
  s.addMember(null, 'support', 'ana@yourco.com', 'member')
  const key = s.createKey(null, 'support', 'ana@yourco.com').secret
  s.allocate(OWNER, { team: 'support', amount: '10000' })
  const app = express()
  app.use(express.json())
  app.use(keeptrusts({ engine: kt.Engine.fromYaml(LIFECYCLE_PACK), store: s, budget: true }))
  app.post('/v1/chat/completions', route)
  const srv = app.listen(0, '127.0.0.1')
  await new Promise((r) => srv.once('listening', r))
  const post = (body) => fetch(`http://127.0.0.1:${srv.address().port}/v1/chat/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body),
  })
  return { s, srv, post }
}

test('the route gets the reserved limit, and an answer without usage is charged its bound', async () => {
  const seen = []
  const { s, srv, post } = await lifecycleApp((req, res) => {
    seen.push(req.body)
    res.json({ id: 'a', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] })
  })
  const r = await post({ model: 'house-model', messages: [{ role: 'user', content: 'hello' }] })
  assert.equal(r.status, 200)
  await r.json()
  srv.close()
  assert.equal(seen[0].max_tokens, 64)
  const e = requestEvent(s)
  assert.equal(e.cost.settled, e.cost.estimated)
  assert.equal(e.cost.unmetered, true)
  assert.equal(Number(s.wallet('team:support').reserved), 0)
})

test('a streamed answer is redacted across chunks and settled on its usage chunk', async () => {
  const { s, srv, post } = await lifecycleApp((req, res) => {
    res.setHeader('content-type', 'text/event-stream')
    for (const p of [
      { id: 's', choices: [{ index: 0, delta: { content: 'write to ana@exa' } }] },
      { id: 's', choices: [{ index: 0, delta: { content: 'mple.com today' } }] },
      { id: 's', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] },
      { id: 's', choices: [], usage: { prompt_tokens: 5, completion_tokens: 6 } },
    ]) res.write(`data: ${JSON.stringify(p)}\n\n`)
    res.end('data: [DONE]\n\n')
  })
  const r = await post({ model: 'house-model', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] })
  const text = await r.text()
  srv.close()
  const events = text.split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)))
  const said = events.filter((e) => e.choices?.length).map((e) => e.choices[0].delta.content ?? '').join('')
  assert.equal(said, 'write to [EMAIL] today')
  assert.ok(text.trimEnd().endsWith('data: [DONE]'))
  assert.deepEqual(events.filter((e) => e.usage).map((e) => e.usage), [{ prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 }])
  assert.equal(Number(requestEvent(s).cost.settled), 11)
  assert.equal(Number(s.wallet('team:support').spent), 11)
})

test("an answer's refusal is redacted and its dropped logprobs are said", async () => {
  const { srv, post } = await lifecycleApp((req, res) => {
    res.json({ id: 'a', object: 'chat.completion', usage: { prompt_tokens: 1, completion_tokens: 1 }, choices: [{
      index: 0, finish_reason: 'stop',
      message: { role: 'assistant', content: null, refusal: 'I cannot mail ana@example.com' },
      logprobs: { content: [{ token: 'ana@example.com', logprob: -0.1 }] },
    }] })
  })
  const r = await post({ model: 'house-model', logprobs: true, messages: [{ role: 'user', content: 'hi' }] })
  const text = await r.text()
  srv.close()
  assert.equal(r.status, 200)
  assert.ok(!text.includes('ana@example.com'), text)
  const choice = JSON.parse(text).choices[0]
  assert.equal(choice.message.refusal, 'I cannot mail [EMAIL]')
  assert.equal(choice.logprobs, null)
  assert.equal(r.headers.get('x-keeptrusts-logprobs-dropped'), 'true')
})
