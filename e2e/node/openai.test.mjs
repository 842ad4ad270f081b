// The official `openai` npm package, unchanged, against `kt gateway run` (issue 8). A fresh
// SQLite store is set up with the `kt` CLI; the gateway runs the quick start pack with the mock
// provider. KT_BIN names the `kt` binary (default target/debug/kt).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import readline from 'node:readline';
import OpenAI from 'openai';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const KT = process.env.KT_BIN ?? join(root, 'target', 'debug', 'kt');
const store = 'sqlite:' + join(mkdtempSync(join(tmpdir(), 'kt-node-')), 'kt.db');
const kt = (...args) => execFileSync(KT, [...args, '--store', store], { encoding: 'utf8' });
let gateway;
let url;
const keys = {};

before(async () => {
  for (const team of ['Support', 'Engineering', 'Legal']) kt('team', 'create', '--name', team);
  const people = { support: 'agent@yourco.com', engineering: 'dev@yourco.com', legal: 'counsel@yourco.com' };
  for (const [team, email] of Object.entries(people)) {
    kt('team', 'add-member', '--team', team, '--email', email);
    keys[team] = JSON.parse(kt('key', 'create', '--team', team, '--email', email, '--json')).key;
  }
  kt('wallet', 'allocate', '--team', 'support', '--amount', '5');
  kt('wallet', 'allocate', '--team', 'legal', '--amount', '1000');
  kt('wallet', 'allocate', '--team', 'engineering', '--amount', '0.003');
  gateway = spawn(KT, ['gateway', 'run', '--pack', join(root, 'examples/packs/gateway-quickstart.yaml'),
    '--listen', '127.0.0.1:0', '--store', store], { stdio: ['ignore', 'ignore', 'pipe'] });
  url = await new Promise((resolve, reject) => {
    const lines = readline.createInterface({ input: gateway.stderr });
    lines.on('line', (line) => {
      const m = line.match(/kt gateway: listening on (http:\/\/\S+)/);
      if (m) resolve(m[1] + '/v1');
    });
    gateway.on('exit', (code) => reject(new Error(`the gateway exited with ${code}`)));
  });
});

after(() => gateway?.kill('SIGTERM'));

const client = (team, opts = {}) => new OpenAI({ baseURL: url, apiKey: keys[team], ...opts });
const ask = (c, content, opts = {}, reqOpts = {}) =>
  c.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], ...opts }, reqOpts);

test('support PII is redacted before the provider sees it', async () => {
  const r = await ask(client('support'), 'Customer SSN 123-45-6789, card 4111 1111 1111 1111, mail jane@example.com');
  assert.equal(r.choices[0].message.content, 'Echo: Customer SSN [US_SSN], card [CREDIT_CARD], mail [EMAIL]');
  assert.ok(r.usage.prompt_tokens > 0);
});

test('engineering is not redacted', async () => {
  const r = await ask(client('engineering'), 'mail jane@example.com');
  assert.match(r.choices[0].message.content, /jane@example\.com/);
});

test('streaming with usage', async () => {
  const stream = await ask(client('support'), 'call me at (415) 555-0132 please',
    { stream: true, stream_options: { include_usage: true } });
  let text = '';
  let usage;
  for await (const chunk of stream) {
    text += chunk.choices?.[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'Echo: call me at [PHONE] please');
  assert.ok(usage.completion_tokens > 0);
});

test('a wrong or missing key is 401', async () => {
  await assert.rejects(ask(new OpenAI({ baseURL: url, apiKey: 'kt_wrong' }), 'hi'),
    (e) => e.status === 401 && e.error.code === 'unauthenticated');
  const r = await fetch(url + '/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(r.status, 401);
});

test('legal is escalated, approved with the CLI, and the retry goes through once', async () => {
  const c = client('legal');
  let esc;
  await assert.rejects(ask(c, 'Review the contract for Maria Garcia', { model: 'gpt-4o' }), (e) => {
    esc = e.error.escalation_id;
    return e.status === 409 && e.error.code === 'escalation_required';
  });
  kt('escalation', 'approve', esc, '--as', 'gc@yourco.com');
  const headers = { 'X-Keeptrusts-Escalation-Id': esc };
  const r = await ask(c, 'Review the contract for Maria Garcia', { model: 'gpt-4o' }, { headers });
  assert.match(r.choices[0].message.content, /\[PERSON\]/);
  await assert.rejects(ask(c, 'Review the contract for Maria Garcia', { model: 'gpt-4o' }, { headers }),
    (e) => e.status === 409);
});

test('an exhausted wallet answers 402 with a ticket; approval lets one retry through', async () => {
  const c = client('engineering', { maxRetries: 0 });
  const prompt = 'a longer prompt that costs a little more each time';
  let ticket;
  for (let i = 0; i < 1000 && !ticket; i++) {
    try {
      await ask(c, prompt);
    } catch (e) {
      assert.equal(e.status, 402);
      assert.equal(e.error.code, 'budget_exceeded');
      ticket = e.error.ticket_id;
    }
  }
  assert.ok(ticket, 'the wallet ran dry');
  // empty the wallet for good, so only the approval can let a request through
  kt('wallet', 'allocate', '--team', 'engineering', '--amount', '0');
  kt('ticket', 'approve', ticket, '--charge-to', 'team:engineering');
  const headers = { 'X-Keeptrusts-Ticket-Id': ticket };
  const r = await ask(c, prompt, {}, { headers });
  assert.match(r.choices[0].message.content, /^Echo:/);
  await assert.rejects(ask(c, prompt, {}, { headers }));
});

test("a member reading another team's dashboard is 403", async () => {
  const r = await fetch(url + '/dashboard/overview?team=legal', { headers: { authorization: 'Bearer ' + keys.support } });
  assert.equal(r.status, 403);
  assert.equal((await r.json()).error.code, 'forbidden');
});

// issue 22: the Responses and embeddings APIs, each redacted for support, charged and audited
const supportEvents = () => kt('events', 'export').trim().split('\n').map((l) => JSON.parse(l))
  .filter((e) => !e.admin && e.team === 'support');
const audited = async (calls, fn) => {
  const before = supportEvents().length;
  await fn();
  const fresh = supportEvents().slice(before);
  assert.equal(fresh.length, calls);
  for (const e of fresh) {
    assert.equal(e.status, 200);
    assert.ok(Number(e.cost.settled) > 0, JSON.stringify(e));
  }
};

test('responses: plain, streamed and a tool call round trip', async () => {
  const c = client('support');
  await audited(4, async () => {
    const r = await c.responses.create({ model: 'gpt-4o-mini', input: 'mail jane@example.com' });
    assert.equal(r.output_text, 'Echo: mail [EMAIL]');
    assert.ok(r.usage.output_tokens > 0);
    const stream = await c.responses.create({ model: 'gpt-4o-mini', input: 'call (415) 555-0132', stream: true });
    let text = '';
    let completed;
    for await (const ev of stream) {
      if (ev.type === 'response.output_text.delta') text += ev.delta;
      if (ev.type === 'response.completed') completed = ev.response;
    }
    assert.equal(text, 'Echo: call [PHONE]');
    assert.ok(completed.usage.input_tokens > 0);
    const tools = [{ type: 'function', name: 'lookup', parameters: { type: 'object', properties: { text: { type: 'string' } } } }];
    const first = await c.responses.create({ model: 'gpt-4o-mini', input: 'who is jane@example.com?', tools });
    const call = first.output.find((i) => i.type === 'function_call');
    assert.deepEqual(JSON.parse(call.arguments), { text: 'who is [EMAIL]?' });
    const second = await c.responses.create({ model: 'gpt-4o-mini', tools, input: [
      { role: 'user', content: 'who is jane@example.com?' }, call,
      { type: 'function_call_output', call_id: call.call_id, output: 'Jane, jane@example.com' }] });
    assert.equal(second.output_text, 'Echo: Jane, [EMAIL]');
  });
});

test('embeddings: every input redacted, priced on input tokens', async () => {
  await audited(1, async () => {
    const r = await client('support').embeddings.create({ model: 'text-embedding-3-small', input: ['mail jane@example.com', 'plain'] });
    assert.equal(r.data.length, 2);
    assert.equal(r.data[0].embedding.length, 8);
    assert.ok(r.usage.prompt_tokens > 0);
  });
  // the vector is the redacted input's: the same as embedding the redacted text itself
  const same = await client('support').embeddings.create({ model: 'text-embedding-3-small', input: 'mail [EMAIL]' });
  const again = await client('support').embeddings.create({ model: 'text-embedding-3-small', input: 'mail jane@example.com' });
  assert.deepEqual(again.data[0].embedding, same.data[0].embedding);
});
