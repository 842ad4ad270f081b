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
// For each POST to a governed path (default /v1/chat/completions) the request is evaluated off the
// event loop: no principal (no key, an unknown key, or `principal(req)` returned null) → 401; a
// denial (402, 403, 409, …) is answered with the error envelope and the route never runs; a
// redaction replaces `req.body`; the decision is left in `req.keeptrusts`. A JSON answer sent with
// `res.json` goes through the output phase, and the request is closed with `store.complete`: the
// reservation is settled with the answer's `usage` (the reserved estimate when it reports none;
// released when the route answers with an error) and the audit event is written. Streamed
// (text/event-stream) answers pass through, their final `usage` event read for the settlement.

const { randomUUID } = require('node:crypto')
const { Store } = require('./index.js')

const ERROR_TYPES = { 400: 'invalid_request_error', 401: 'authentication_error', 402: 'insufficient_quota', 403: 'permission_error', 409: 'policy_error', 413: 'invalid_request_error' }

function envelope(status, code, message, requestId) {
  return { error: { type: ERROR_TYPES[status] ?? 'api_error', code, message, request_id: requestId } }
}

function send(res, status, body, requestId) {
  res.setHeader('x-request-id', requestId)
  if (status >= 400 && status < 500) res.setHeader('x-should-retry', 'false')
  res.status(status).type('application/json').send(JSON.stringify(body))
}

function usageOf(value) {
  if (!value || typeof value !== 'object') return null
  return { prompt_tokens: Number(value.prompt_tokens) || 0, completion_tokens: Number(value.completion_tokens) || 0 }
}

function estimatedUsage(decision) {
  const e = decision.estimate
  return e ? { prompt_tokens: e.input_tokens, completion_tokens: e.output_tokens } : null
}

function sseUsage(line) {
  line = line.trim()
  if (!line.startsWith('data:') || !line.includes('"usage"')) return null
  try {
    const event = JSON.parse(line.slice(5))
    return usageOf(event && event.usage)
  } catch {
    return null
  }
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
    const rid = req.headers['x-request-id'] || `req_${randomUUID().replaceAll('-', '')}`
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
    let decision
    try {
      decision = await engine.evaluateAsync(who, request, store, context, budget)
    } catch (e) {
      const code = e.code ?? 'invalid_request'
      const status = String(code).startsWith('store_') ? 503 : 400
      return send(res, status, envelope(status, code, e.message, rid), rid)
    }
    req.keeptrusts = decision
    const model = request.model
    let closed = false
    const close = (usage) => {
      if (closed) return
      closed = true
      try {
        store.complete(who, decision, rid, usage ? { model, target: model, usage } : { model })
      } catch (e) {
        res.emit('keeptrusts:error', e)
      }
    }
    if (decision.verdict !== 'allow' && decision.verdict !== 'redact') {
      close(null)
      return send(res, decision.status, { error: decision.error ?? {} }, rid)
    }
    req.body = decision.request ?? request

    // the output phase of JSON answers
    const json = res.json.bind(res)
    res.json = (body) => {
      if (res.statusCode !== 200 || !body || typeof body !== 'object' || !Array.isArray(body.choices)) {
        close(null)
        return json(body)
      }
      let out
      try {
        out = engine.evaluateOutput(who, body, { request_id: rid })
      } catch (e) {
        close(null)
        res.status(500)
        return json(envelope(500, e.code ?? 'internal_error', e.message, rid))
      }
      close(usageOf(body.usage) ?? estimatedUsage(decision))
      if (out.verdict === 'allow' || out.verdict === 'redact') return json(out.response ?? body)
      res.status(out.status)
      return json({ error: out.error ?? {} })
    }
    // streamed answers: read the usage event as it passes
    let streamUsage = null
    let pending = ''
    const write = res.write.bind(res)
    res.write = (chunk, ...rest) => {
      if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) {
        pending += Buffer.isBuffer(chunk) ? chunk.toString('utf8') : String(chunk)
        const lines = pending.split('\n')
        pending = lines.pop()
        for (const line of lines) streamUsage = sseUsage(line) ?? streamUsage
      }
      return write(chunk, ...rest)
    }
    res.on('finish', () => {
      if (closed) return
      const streamed = String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')
      if (res.statusCode === 200 && streamed) close(sseUsage(pending) ?? streamUsage ?? estimatedUsage(decision))
      else close(null)
    })
    res.on('close', () => close(null))
    next()
  }
}

module.exports = { keeptrusts }
