// Type-checked by `tsc -p tsconfig.json` (npm test): what a TypeScript user writes against the
// package's declarations.
import { Engine, Store, StreamRedactor, lint, redact, scan, scanAsync } from '../index.js'
import type { AuthenticateStatus, Decision, KeyInfo, Principal, Span, Team, Wallet } from '../index.js'
import { keeptrusts } from '../express.js'

const engine: Engine = Engine.fromYaml('pack: { name: demo, version: "1.0" }\npolicies: { chain: [pii-detector] }\n')
const store: Store = Store.memory()
const owner: Principal = { user: 'root@yourco.com', team: 'platform', role: 'owner', authenticated: true }

store.createTeam(null, 'Support')
store.addMember(owner, 'support', 'ana@yourco.com', 'member')
const issued = store.createKey(owner, 'support', 'ana@yourco.com')
const ana: Principal | null = store.authenticate(issued.secret)
const wallet: Wallet = store.allocate(owner, { team: 'support', amount: '25', period: 'monthly' })
// every administrative action as the core's command, recorded as an event
const legal: Team = store.admin(owner, { op: 'create_team', name: 'Legal' })
store.admin(null, { op: 'set_member', team: legal.slug, email: 'lee@yourco.com', role: 'member' }, null, null, 'default')
const ci = store.createKey(null, 'legal', 'lee@yourco.com', null, null, { label: 'ci', expiresAt: Date.now() + 86_400_000 })
const status: AuthenticateStatus = store.authenticateStatus(ci.secret)
const refused: string | null = 'refused' in status ? status.refused : null
const keys: KeyInfo[] = store.keys('legal')

const decision: Decision = engine.evaluate(ana ?? owner, { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, store)
if (decision.verdict === 'allow' && decision.reservation) {
  const done = store.complete(ana ?? owner, decision, 'req-1', { model: 'gpt-4o-mini', usage: { prompt_tokens: 3, completion_tokens: 5 } })
  const charged: string | undefined = done.settlement?.charged
  void charged
}
const spans: Span[] = scan('mail a@b.co')
const masked: string = redact('mail a@b.co', { format: 'mask' })
const stream = new StreamRedactor({ entities: ['EMAIL'] })
const piece: string = stream.push('mail a@b') + stream.finish()
const ok: boolean = lint('pack: {}').valid
const report = store.verify()
const valid: boolean = report.valid
const middleware = keeptrusts({ engine, store, budget: true })

async function later(): Promise<number> {
  const found = await scanAsync('x'.repeat(1000))
  const d = await engine.evaluateAsync(owner, { messages: [{ role: 'user', content: 'hi' }] }, store, { request_id: 'r2' }, false)
  return found.length + d.status
}

void [wallet, refused, keys, spans, masked, piece, ok, valid, middleware, later]
