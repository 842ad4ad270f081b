// The console in headless Chromium against `kt gateway run` (issue 24's "done when"):
// a member sees only their team and their own events and cannot reach another team by editing
// the URL; an org admin creates a team, adds a member, creates and revokes a key, allocates a
// wallet, approves an escalation and a ticket; an owner switches teams. Every request the browser
// makes must go to 127.0.0.1 (anything else is aborted and fails the test), and no page may raise
// a script error. It screenshots every section (see SHOTS below).
//
// KT_BIN names the `kt` binary (default target/debug/kt); CHROMIUM the browser (/usr/bin/chromium).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { chromium } from 'playwright-core'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const KT = process.env.KT_BIN || join(ROOT, 'target/debug/kt')
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
// screenshots go to target/ so a test run leaves the tree clean; KT_CONSOLE_SHOTS=docs/console
// refreshes the ones docs/console.md shows
const SHOTS = resolve(ROOT, process.env.KT_CONSOLE_SHOTS || 'target/console-screenshots')
const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run']

const dir = mkdtempSync(join(tmpdir(), 'kt-console-'))
const store = `sqlite:${join(dir, 'kt.db')}`
let gateway, base, browser
const keys = {}
const offsite = [] // requests the browser tried to send anywhere but 127.0.0.1
const scriptErrors = []

function kt (...args) {
  return execFileSync(KT, [...args, '--store', store], { encoding: 'utf8', timeout: 30000 })
}

function key (team, email) {
  return JSON.parse(kt('key', 'create', '--team', team, '--email', email, '--json')).key
}

async function chat (k, model, content, headers = {}) {
  const r = await fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] })
  })
  return { status: r.status, body: await r.json() }
}

function killGateway () {
  if (gateway && gateway.exitCode === null) gateway.kill('SIGKILL')
}
process.on('exit', killGateway)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { killGateway(); process.exit(130) })

before(async () => {
  mkdirSync(SHOTS, { recursive: true })
  // the seed's org: an owner, an org admin, support (an admin and a member) and legal
  for (const name of ['Platform', 'Support', 'Legal']) kt('team', 'create', '--name', name)
  kt('team', 'add-member', '--team', 'platform', '--email', 'root@yourco.com', '--role', 'owner')
  kt('team', 'add-member', '--team', 'platform', '--email', 'ops@yourco.com', '--role', 'admin')
  kt('org', 'add-admin', '--email', 'ops@yourco.com')
  kt('team', 'add-member', '--team', 'support', '--email', 'lead@yourco.com', '--role', 'admin')
  kt('team', 'add-member', '--team', 'support', '--email', 'ana@yourco.com')
  kt('team', 'add-member', '--team', 'support', '--email', 'bo@yourco.com')
  kt('team', 'add-member', '--team', 'legal', '--email', 'counsel@yourco.com')
  keys.owner = key('platform', 'root@yourco.com')
  keys.ops = key('platform', 'ops@yourco.com')
  keys.ana = key('support', 'ana@yourco.com')
  keys.bo = key('support', 'bo@yourco.com')
  keys.counsel = key('legal', 'counsel@yourco.com')
  kt('wallet', 'allocate', '--team', 'support', '--amount', '5')
  kt('wallet', 'allocate', '--team', 'legal', '--amount', '1000', '--period', 'monthly')

  gateway = spawn(KT, ['gateway', 'run', '--pack', join(ROOT, 'examples/packs/gateway-quickstart.yaml'),
    '--listen', '127.0.0.1:0', '--store', store], { stdio: ['ignore', 'ignore', 'pipe'] })
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the gateway did not start in 30 s')), 30000)
    createInterface({ input: gateway.stderr }).on('line', (line) => {
      const m = line.match(/kt gateway: listening on (http:\/\/\S+)/)
      if (m) { clearTimeout(timer); resolve(m[1]) }
    })
    gateway.on('exit', (code) => reject(new Error(`the gateway exited with ${code}`)))
  })

  // traffic: support's requests (one redacted), bo's, legal's escalated request
  assert.equal((await chat(keys.ana, 'gpt-4o-mini', 'Customer SSN 123-45-6789, mail jane@example.com')).status, 200)
  assert.equal((await chat(keys.ana, 'gpt-4o-mini', 'Summarise the ticket')).status, 200)
  assert.equal((await chat(keys.bo, 'gpt-4o-mini', 'Draft a reply for bo')).status, 200)
  assert.equal((await chat(keys.counsel, 'gpt-4o', 'Review the contract Jane Doe (jane@example.com) sent')).status, 409)

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS, timeout: 60000 })
})

after(async () => {
  if (browser) await browser.close()
  killGateway()
  rmSync(dir, { recursive: true, force: true })
  assert.deepEqual(offsite, [], 'no request leaves 127.0.0.1')
  assert.deepEqual(scriptErrors, [], 'no script errors')
})

/** A fresh browser context (its own cookies) that refuses anything but 127.0.0.1. */
async function session (viewport = { width: 1280, height: 900 }) {
  const ctx = await browser.newContext({ viewport, timezoneId: 'Europe/Paris', locale: 'en-GB' })
  ctx.setDefaultTimeout(15000)
  await ctx.route('**/*', (route) => {
    const u = new URL(route.request().url())
    if (u.hostname !== '127.0.0.1') { offsite.push(u.href); return route.abort() }
    return route.continue()
  })
  const page = await ctx.newPage()
  page.on('pageerror', (e) => scriptErrors.push(`${page.url()}: ${e.message}`))
  page.on('console', (m) => {
    // the browser logs every page answered 4xx (a refused form or URL), which the tests ask for on purpose
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 40[0134]/.test(m.text())) {
      scriptErrors.push(`${page.url()}: ${m.text()}`)
    }
  })
  return { ctx, page }
}

async function signIn (page, secret) {
  await page.goto(`${base}/console`)
  assert.match(page.url(), /\/console\/sign-in/)
  await page.getByLabel('Your personal API key').fill(secret)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(/\/console\/overview/)
}

async function shot (page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })
}

test('a member signs in and sees only their team and their own events', async () => {
  const { ctx, page } = await session()
  await page.goto(`${base}/console/sign-in`)
  await shot(page, 'sign-in')
  await signIn(page, keys.ana)
  assert.equal(await page.locator('#team-switch').count(), 0, 'no team switcher for a member')
  assert.match(await page.locator('header').innerText(), /ana@yourco\.com · member of support/)
  // times are shown in the viewer's time zone by the script (the server writes UTC)
  const t = page.locator('main time').first()
  if (await t.count()) assert.doesNotMatch(await t.innerText(), /UTC$/)

  await page.getByRole('link', { name: 'Events' }).click()
  const events = await page.locator('main').innerText()
  assert.match(events, /ana@yourco\.com/)
  assert.doesNotMatch(events, /bo@yourco\.com|counsel@yourco\.com/)
  assert.doesNotMatch(events, /123-45-6789|jane@example\.com/, 'never values')
  assert.match(events, /US_SSN × 1/, 'finding types and counts')

  await page.getByRole('link', { name: 'Usage' }).click()
  const usage = await page.locator('main').innerText()
  assert.match(usage, /ana@yourco\.com/)
  assert.doesNotMatch(usage, /bo@yourco\.com/)
  assert.match(usage, /Team total/)

  // editing the URL to reach another team, or the org roll-up, is refused
  for (const path of ['overview?team=legal', 'events?team=legal', 'spend?team=platform', 'overview?team=*', 'settings/members?team=legal']) {
    const r = await page.goto(`${base}/console/${path}`)
    assert.equal(r.status(), 403, path)
    assert.doesNotMatch(await page.locator('main').innerText(), /counsel@yourco\.com/)
  }
  await shot(page, 'member-refused')

  // a phone-width window: still readable, no horizontal scroll on the page itself
  const phone = await session({ width: 390, height: 844 })
  await signIn(phone.page, keys.ana)
  await shot(phone.page, 'phone-overview')
  const wide = await phone.page.evaluate(() => document.documentElement.scrollWidth)
  assert.ok(wide <= 400, `the page fits a phone (${wide}px)`)
  await phone.ctx.close()
  await ctx.close()
})

test('an org admin creates a team, adds a member, creates and revokes a key, allocates a wallet, approves an escalation and a ticket', async () => {
  const { ctx, page } = await session()
  await signIn(page, keys.ops)

  // Settings → Members & Teams
  await page.getByRole('link', { name: 'Members & Teams' }).click()
  await page.getByLabel('Name', { exact: true }).fill('Engineering')
  await page.getByLabel('Description').fill('Builds the product')
  await page.getByRole('button', { name: 'Create team' }).click()
  await page.getByText('Team engineering created.').waitFor()
  await page.goto(`${base}/console/settings/members?team=engineering`)
  // a wrong email: the API's message next to the field, keyboard focus stays usable
  await page.getByLabel('Email', { exact: true }).fill('eve@yourco')
  await page.getByLabel('Email', { exact: true }).press('Enter')
  await page.locator('#err-add_member-email').waitFor()
  await page.getByLabel('Email', { exact: true }).fill('eve@yourco.com')
  await page.getByRole('button', { name: 'Add member' }).click()
  await page.getByText('eve@yourco.com is now member of engineering.').waitFor()
  await page.getByLabel("Member's email").fill('eve@yourco.com')
  await page.getByLabel('Label (what it is for)').fill('laptop')
  await page.getByRole('button', { name: 'Create key' }).click()
  const secret = (await page.locator('#new-key').innerText()).trim()
  assert.match(secret, /^kt_[0-9a-f]{64}$/)
  await page.getByRole('button', { name: 'Copy' }).click()
  await shot(page, 'members-new-key')
  await page.goto(`${base}/console/settings/members?team=engineering`)
  assert.doesNotMatch(await page.content(), new RegExp(secret), 'a key is shown once')
  await shot(page, 'members')
  assert.equal((await chat(secret, 'gpt-4o-mini', 'hello')).status, 402, 'engineering has no wallet yet')
  await page.getByRole('button', { name: `Revoke ${secret.slice(0, 11)}` }).click()
  await page.getByText(`Key ${secret.slice(0, 11)} revoked.`).waitFor()
  assert.equal((await chat(secret, 'gpt-4o-mini', 'hello')).status, 401, 'the revoked key is refused')

  // Wallets: allocate monthly
  await page.goto(`${base}/console/settings/wallets?team=engineering`)
  await page.getByLabel('Amount').fill('25')
  await page.getByLabel('Period').selectOption('monthly')
  await page.getByRole('button', { name: 'Allocate' }).click()
  await page.getByText('Allocated 25 USD to team:engineering.').waitFor()
  assert.match(await page.locator('main table').first().innerText(), /team:engineering\s+monthly/)

  // Escalations: legal's held request; approve, then the retry goes through once
  await page.goto(`${base}/console/escalations?team=legal`)
  const queue = await page.locator('main').innerText()
  assert.match(queue, /Review the contract \[PERSON\] \(\[EMAIL\]\) sent/, 'the redacted excerpt')
  assert.doesNotMatch(queue, /jane@example\.com|Jane Doe/)
  await shot(page, 'escalations')
  const escId = (await page.locator('main table code').first().innerText()).trim()
  await page.getByRole('button', { name: `Approve ${escId}` }).click()
  await page.getByText(`Escalation ${escId} approved.`).waitFor()
  const retried = await chat(keys.counsel, 'gpt-4o', 'Review the contract Jane Doe (jane@example.com) sent', { 'x-keeptrusts-escalation-id': escId })
  assert.equal(retried.status, 200)

  // a ticket: support's wallet runs dry; approve charging support
  kt('wallet', 'allocate', '--team', 'support', '--amount', '0')
  const refused = await chat(keys.bo, 'gpt-4o-mini', 'One more for bo')
  assert.equal(refused.status, 402)
  const ticket = refused.body.error.ticket_id
  await page.goto(`${base}/console/settings/wallets?team=support`)
  await shot(page, 'wallets')
  await page.getByRole('button', { name: `Approve ${ticket}` }).click()
  await page.getByText(`Ticket ${ticket} approved.`).waitFor()
  const paid = await chat(keys.bo, 'gpt-4o-mini', 'One more for bo', { 'x-keeptrusts-ticket-id': ticket })
  assert.equal(paid.status, 200)
  kt('wallet', 'allocate', '--team', 'support', '--amount', '5')
  await ctx.close()
})

test('an owner switches teams and sees the org roll-up; screenshots of every section', async () => {
  const { ctx, page } = await session()
  await signIn(page, keys.owner)
  await page.getByLabel('Team', { exact: true }).selectOption('*')
  await page.waitForURL(/team=\*|team=%2A/)
  assert.match(await page.locator('main').innerText(), /Requests \(30 days\)/)
  await shot(page, 'overview-org')
  await page.getByLabel('Team', { exact: true }).selectOption('support')
  await page.waitForURL(/team=support/)
  await shot(page, 'overview')
  for (const [link, name] of [['Events', 'events'], ['Spend', 'spend'], ['Usage', 'usage']]) {
    await page.getByRole('link', { name: link, exact: true }).click()
    await page.waitForURL(new RegExp(`/console/${name}\\?team=support`))
    await shot(page, name)
  }
  await page.getByRole('link', { name: 'Events', exact: true }).click()
  const events = await page.locator('main').innerText()
  assert.match(events, /ana@yourco\.com/)
  assert.match(events, /bo@yourco\.com/)
  assert.doesNotMatch(events, /counsel@yourco\.com/)
  await page.getByRole('link', { name: /Details/ }).first().click()
  await page.waitForURL(/\/console\/events\/\d+/)
  await shot(page, 'event-detail')
  await page.getByLabel('Team', { exact: true }).selectOption('legal')
  await page.waitForURL(/team=legal/)
  await page.getByRole('link', { name: 'Events', exact: true }).click()
  assert.match(await page.locator('main').innerText(), /counsel@yourco\.com/)
  // sign out: the session ends
  await page.getByRole('button', { name: 'Sign out' }).click()
  await page.waitForURL(/sign-in\?reason=signed_out/)
  const r = await page.goto(`${base}/console/overview`)
  assert.match(page.url(), /sign-in/)
  assert.equal(r.status(), 200)
  await ctx.close()
})
