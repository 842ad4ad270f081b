'use strict'
// An OpenAI-style chat endpoint governed by keeptrusts, as an Express app.
//
//   node examples/express-app.js            # listens on :8080, store sqlite:keeptrusts.db
//
// Create a team, a member, a key and an allocation in the same store with the `kt` CLI
// (`--store sqlite:keeptrusts.db`, or set KEEPTRUSTS_STORE), then call POST /v1/chat/completions
// with `Authorization: Bearer kt_…`. The route answers by echoing the prompt it receives, so you can
// see what governance let through; a real app would call its model provider instead.
const path = require('node:path')
const express = require('express')
const kt = require('..')
const { keeptrusts } = require('../express')

const PACK = path.join(__dirname, '..', '..', 'examples', 'packs', 'gateway-quickstart.yaml')

function createApp(store = kt.Store.memory(), { budget = true } = {}) {
  const app = express()
  app.use(express.json({ limit: '4mb' }))
  app.use(keeptrusts({ engine: kt.Engine.fromFile(PACK), store, budget }))
  app.post('/v1/chat/completions', (req, res) => {
    const prompt = req.body.messages.filter((m) => m.role === 'user').map((m) => m.content).join(' ')
    res.setHeader('x-keeptrusts-verdict', req.keeptrusts.verdict)
    res.json({
      id: 'chatcmpl-example',
      object: 'chat.completion',
      model: req.body.model,
      choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: `You said: ${prompt}` } }],
      usage: { prompt_tokens: 12, completion_tokens: 8, total_tokens: 20 },
    })
  })
  return app
}

module.exports = { createApp }

if (require.main === module) {
  const store = kt.Store.open(process.env.KEEPTRUSTS_STORE ?? 'sqlite:keeptrusts.db')
  const port = Number(process.env.PORT ?? 8080)
  createApp(store).listen(port, () => console.log(`governed chat endpoint on http://127.0.0.1:${port}/v1/chat/completions`))
}
