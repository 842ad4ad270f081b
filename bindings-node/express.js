'use strict'
// Express middleware: governs an app's OpenAI-style chat completion endpoint with a keeptrusts
// pack. Mirrors keeptrusts.asgi for Python; the rules all live in the Rust core.
//
//   const express = require('express')
//   const kt = require('keeptrusts')
//   const { keeptrusts } = require('keeptrusts/express')
//   const app = express()
//   app.use(express.json())
//   app.use(keeptrusts({ engine: kt.Engine.fromFile('pack.yaml'), store: kt.Store.sqlite('keeptrusts.db') }))
//
// For each POST to a governed path (default /v1/chat/completions) the request runs through the
// core's lifecycle (`Engine#begin`): no principal (no key, an unknown key, or `principal(req)`
// returned null) → 401; a refusal (402, 403, 409, …) is answered with the error envelope and the
// route never runs; `req.body` becomes the governed request, with an output limit no larger than
// the reservation covers (injected when the client sent none); the decision is left in
// `req.keeptrusts`. A JSON answer sent with `res.json` goes through the output phase and is settled
// on its `usage` (the whole reservation when it reports none). A streamed (text/event-stream)
// answer is redacted chunk by chunk by the core and settled on its usage chunk. A route that
// answers an error is not charged; a client that leaves while the route works is charged the
// reservation. This file keeps no usage, pricing or closing rule of its own.

const { randomUUID } = require('node:crypto')
const { Store, errorEnvelope: envelope } = require('./index.js')

function send(res, status, body, requestId) {
  res.setHeader('x-request-id', requestId)
  if (status >= 400 && status < 500) res.setHeader('x-should-retry', 'false')
  res.status(status).type('application/json').send(JSON.stringify(body))
}

function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    // past the limit the rest is read and dropped (memory stays bounded), so the client still
    // gets its 413 instead of a reset connection
    req.on('data', (c) => {
      size += c.length
      if (size <= limit) chunks.push(c)
    })
    req.on('end', () => {
      if (size > limit) reject(Object.assign(new Error(`the body is larger than ${limit} bytes`), { status: 413 }))
      else resolve(Buffer.concat(chunks).toString('utf8'))
    })
    req.on('error', reject)
  })
}

function keeptrusts(options) {
  const { engine, principal, budget = false, maxBody = 4 * 1024 * 1024 } = options ?? {}
  if (!engine) throw new TypeError('keeptrusts({ engine }) needs an Engine')
  const store = options.store ?? Store.memory()
  const paths = new Set(options.paths ?? ['/v1/chat/completions'])

  const identify = (req) => {
    if (principal) return principal(req)
    const auth = req.headers.authorization ?? ''
    const secret = auth.slice(0, 7).toLowerCase() === 'bearer ' ? auth.slice(7).trim() : ''
    return secret ? store.authenticate(secret) : null
  }

  return async function keeptrustsMiddleware(req, res, next) {
    if (req.method !== 'POST' || !paths.has(req.path)) return next()
    // unique even when the client names its own id: no two calls share a reservation
    const given = req.headers['x-request-id']
    const suffix = randomUUID().replaceAll('-', '')
    const rid = given ? `${given}.${suffix.slice(0, 16)}` : `req_${suffix}`
    let request = req.body
    if (request === undefined) {
      if (req.readableEnded) {
        return send(res, 400, envelope(400, 'invalid_request', 'the body was consumed before the keeptrusts middleware could read it', rid), rid)
      }
      try {
        const raw = await readBody(req, maxBody)
        request = JSON.parse(raw)
      } catch (e) {
        if (e.status === 413) return send(res, 413, envelope(413, 'request_too_large', e.message, rid), rid)
        return send(res, 400, envelope(400, 'invalid_request', `the body is not a chat completion request: ${e.message}`, rid), rid)
      }
    }
    if (typeof request !== 'object' || request === null || Array.isArray(request)) {
      return send(res, 400, envelope(400, 'invalid_request', 'the body is not a chat completion request: expected a JSON object', rid), rid)
    }
    let who
    try {
      who = await identify(req)
    } catch (e) {
      return send(res, 503, envelope(503, e.code ?? 'store_unavailable', 'the key store is unavailable', rid), rid)
    }
    if (!who) return send(res, 401, envelope(401, 'unauthenticated', 'send an API key: Authorization: Bearer kt_…', rid), rid)
    const context = { request_id: rid, now_ms: Date.now() }
    if (req.headers['x-keeptrusts-escalation-id']) context.escalation_id = req.headers['x-keeptrusts-escalation-id']
    if (req.headers['x-keeptrusts-ticket-id']) context.ticket_id = req.headers['x-keeptrusts-ticket-id']
    let x
    try {
      x = engine.begin(who, request, store, context, budget)
    } catch (e) {
      const code = e.code ?? 'invalid_request'
      const status = String(code).startsWith('store_') ? 503 : 400
      return send(res, status, envelope(status, code, e.message, rid), rid)
    }
    if (x.refusal) return send(res, x.refusal.status, x.refusal.body, rid)
    req.keeptrusts = x.decision
    req.body = x.nextCall()

    // every path below closes the exchange once: its settlement or release, and its event
    let closed = false
    const closeWith = (f) => {
      if (closed) return null
      closed = true
      try {
        return f()
      } catch (e) {
        res.emit('keeptrusts:error', e)
        return null
      }
    }
    const routeFailed = () => closeWith(() => {
      x.failed()
      return x.exhausted(`the route answered ${res.statusCode}`)
    })

    // the output phase of JSON answers
    const json = res.json.bind(res)
    res.json = (body) => {
      if (res.statusCode !== 200) {
        routeFailed()
        return json(body)
      }
      if (!body || typeof body !== 'object' || !Array.isArray(body.choices)) {
        closeWith(() => x.broken('the route answered something that is not a chat completion'))
        return json(body)
      }
      const a = closeWith(() => x.answer(body))
      if (!a) {
        res.status(500)
        return json(envelope(500, 'internal_error', 'the answer could not be governed', rid))
      }
      res.status(a.status)
      // logprobs cannot be redacted: the core dropped them, and the client is told
      if ((a.dropped ?? []).includes('logprobs')) res.setHeader('x-keeptrusts-logprobs-dropped', 'true')
      return json(a.body)
    }

    // streamed answers: each event through the core's output filter
    const write = res.write.bind(res)
    const end = res.end.bind(res)
    const streaming = () => String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')
    let pending = ''
    const relay = (text) => {
      pending += text
      const lines = pending.split('\n')
      pending = lines.pop()
      let out = ''
      for (const line of lines) out += relayLine(line)
      return out
    }
    const relayLine = (line) => {
      const data = line.trim()
      if (!data) return ''
      if (!data.startsWith('data:')) return `${line}\n`
      const payload = data.slice(5).trim()
      if (payload === '[DONE]') return '' // sent after the held-back text
      let chunk
      try {
        chunk = JSON.parse(payload)
      } catch {
        return ''
      }
      if (!chunk || typeof chunk !== 'object') return ''
      return x.pushChunk(chunk).map((c) => `data: ${JSON.stringify(c)}\n\n`).join('')
    }
    res.write = (chunk, ...rest) => {
      if (!streaming() || closed || res.statusCode !== 200) return write(chunk, ...rest)
      const out = relay(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk))
      return out ? write(out) : true
    }
    res.end = (chunk, ...rest) => {
      if (!streaming() || closed || res.statusCode !== 200) return end(chunk, ...rest)
      let out = ''
      if (chunk !== undefined && chunk !== null && typeof chunk !== 'function') {
        out += relay(Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk))
      }
      out += relayLine(pending)
      pending = ''
      const done = closeWith(() => x.finishStream())
      for (const c of done?.chunks ?? []) out += `data: ${JSON.stringify(c)}\n\n`
      out += 'data: [DONE]\n\n'
      return end(out)
    }
    res.on('finish', () => {
      if (closed) return
      // an answer sent some other way (res.send, a stream of another type)
      if (res.statusCode === 200) closeWith(() => x.broken('the route answered something that is not a chat completion'))
      else routeFailed()
    })
    // the client went away first: the route may have been billed
    res.on('close', () => closeWith(() => x.abandon()))
    next()
  }
}

module.exports = { keeptrusts }
