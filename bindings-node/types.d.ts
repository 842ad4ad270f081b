// Hand-written types of what the calls take and answer; index.d.ts (napi's output with
// dts-header.d.ts in front) imports and re-exports them.

/** Who is calling. Hosts set `authenticated` once they verified the caller. */
export interface Principal {
  org?: string
  user?: string
  team?: string
  role?: Role
  consumer_group?: string
  authenticated?: boolean
  /** An admin of every team (present only when true). */
  org_admin?: boolean
}
export type Role = 'owner' | 'admin' | 'member'
export type Resolution = 'approve' | 'deny'
export type Section = 'overview' | 'events' | 'spend' | 'escalations' | 'usage'
export type MarkerFormat = 'label' | 'mask' | 'hash' | 'partial'
export type Verdict = 'allow' | 'redact' | 'ticket' | 'escalate' | 'block'
/** Money is decimal text (`"12.50"`); numbers are accepted as input. */
export type Money = string

export interface ChatMessage {
  role: string
  content?: string | Array<Record<string, any>> | null
  [field: string]: any
}
export interface ChatRequest {
  model?: string
  messages: ChatMessage[]
  max_tokens?: number
  [field: string]: any
}
export interface ChatResponse {
  choices: Array<{ index?: number; message?: ChatMessage; [field: string]: any }>
  usage?: Usage
  [field: string]: any
}
/** Per-request facts: an id (default: a fresh one), the time (default: now), replay ids. */
export interface RequestContext {
  request_id?: string
  now_ms?: number
  escalation_id?: string
  ticket_id?: string
}
export interface Usage {
  prompt_tokens: number
  completion_tokens: number
}
export interface ErrorInfo {
  type: string
  code: string
  message: string
  policy?: string
  request_id: string
  escalation_id?: string
  ticket_id?: string
}
export interface Lease {
  id: string
  wallet: { scope: 'user' | 'team' | 'org'; id: string }
  amount: Money
  status: string
  [field: string]: any
}
export interface Decision {
  phase: 'input' | 'output'
  verdict: Verdict
  status: number
  reason?: string
  error?: ErrorInfo
  chain: string[]
  results: Array<{ kind: string; verdict: Verdict; reason?: string; entities?: Record<string, number> }>
  request?: ChatRequest
  response?: ChatResponse
  escalation_id?: string
  ticket_id?: string
  reservation?: Lease
  estimate?: { amount: Money; input_tokens: number; output_tokens: number; [field: string]: any }
  audit?: Record<string, any>
  diagnostics?: Array<Record<string, any>>
  /** Answer fields removed because they cannot be redacted in place (`logprobs`). */
  dropped?: string[]
}
export interface Diagnostic {
  code: string
  severity: 'error' | 'warning'
  message: string
  path: string
  line: number
  column: number
  suggestion?: string
}
/** The error envelope of an error the host raises itself (`errorEnvelope`). */
export interface ErrorEnvelope {
  error: { type: string; code: string; message: string; request_id: string }
}

export interface LintReport {
  valid: boolean
  errors: Diagnostic[]
  warnings: Diagnostic[]
}
/** A detected value: `text.slice(start, end)` in UTF-16 code units. */
export interface Span {
  start: number
  end: number
  type: string
}
export interface Team {
  slug: string
  name: string
  description?: string
  created_at: number
  /** Set while the team is archived: its keys do not authenticate. */
  archived_at?: number
}
export interface Member {
  team: string
  user: string
  role: Role
  updated_at: number
}
/** A key as shown: never its secret or hash. */
export interface KeyInfo {
  id: string
  user: string
  team: string
  consumer_group?: string
  label?: string
  created_at: number
  expires_at?: number
  revoked_at?: number
  replaced_by?: string
  last_used_at?: number
  status: 'active' | 'revoked' | 'expired'
}
export interface IssuedKey {
  /** `kt_…`: shown only here, stored only as a hash. */
  secret: string
  key: KeyInfo
}
/** What a secret stands for: the principal, or why none (`refused` is a stable code). */
export type AuthenticateStatus = { principal: Principal } | { refused: string; message: string }
/** An administrative command, the core's `admin::Command`. */
export type AdminCommand =
  | { op: 'create_team'; name: string; description?: string | null }
  | { op: 'update_team'; team: string; name?: string; description?: string; archived?: boolean }
  | { op: 'get_team'; team: string }
  | { op: 'set_member'; team: string; email: string; role: Role }
  | { op: 'remove_member'; team: string; email: string }
  | { op: 'list_members'; team: string }
  | { op: 'add_org_admin'; email: string }
  | { op: 'remove_org_admin'; email: string }
  | { op: 'create_key'; team: string; email: string; consumer_group?: string; label?: string; expires_at?: number }
  | { op: 'revoke_key'; id: string }
  | { op: 'rotate_key'; id: string; expires_at?: number | null }
  | { op: 'list_keys'; team?: string | null }
  | ({ op: 'allocate' } & Allocation)
  | { op: 'resolve_ticket'; id: string; resolution: Resolution; charge_to?: string | null }
  | { op: 'resolve_escalation'; id: string; resolution: Resolution }
/** The seed's allocation body: exactly one of `team`, `user`, `org`. */
export interface Allocation {
  team?: string
  user?: string
  org?: string
  amount: Money | number
  currency?: string
  period?: 'monthly'
  mode?: 'set' | 'top_up'
  user_team?: string
}
export interface Wallet {
  key: { scope: 'user' | 'team' | 'org'; id: string }
  currency: string
  allocated: Money
  spent: Money
  reserved: Money
  [field: string]: any
}
export interface Ticket {
  id: string
  status: 'pending' | 'approved' | 'denied' | 'expired' | 'fulfilled'
  team?: string
  user?: string
  model: string
  estimate: Money
  currency: string
  charge_to?: { scope: 'user' | 'team' | 'org'; id: string }
  [field: string]: any
}
export interface Escalation {
  id: string
  status: 'pending' | 'approved' | 'denied' | 'expired'
  team?: string
  [field: string]: any
}
export interface AuditEvent {
  seq: number
  id: string
  request_id: string
  timestamp: number
  org: string
  team?: string
  verdict: Verdict
  status: number
  prev_hash: string
  hash: string
  [field: string]: any
}
export interface Completion {
  settlement?: { lease: Lease; charged: Money; replay: boolean }
  event?: AuditEvent
}
export interface VerifyReport {
  valid: boolean
  events: number
  /** Events whose content was removed at the end of their retention. */
  pruned: number
  /** The last event of a sound chain. */
  head?: { seq: number; hash: string }
  problem?: string
  /** The first break: `{Modified: {position, seq}}`, `{Truncated: {head, last}}`, `"HeadMissing"`, … */
  tamper?: Record<string, Record<string, number | null>> | string
}

/** What closes a request: its settlement (`actual`) or release, and its event draft. */
export interface Closing {
  lease: string | null
  actual: Money | null
  draft: { status: number; reason?: string; cost?: { estimated: Money; settled?: Money; overrun?: boolean; unmetered?: boolean; [field: string]: any }; [field: string]: any }
  restore_ticket: string | null
}
export interface ExchangeAnswer {
  status: number
  body: Record<string, any>
  verdict: Verdict
  close: Closing
  /** Answer fields removed because they cannot be redacted in place: send `x-keeptrusts-logprobs-dropped: true` for `logprobs`. */
  dropped?: string[]
}
export interface StreamFinish {
  chunks: Record<string, any>[]
  close: Closing
  verdict: Verdict
}
