import type { Engine, Principal, Store } from './index'

/** Options of {@link keeptrusts}. */
export interface KeeptrustsOptions {
  /** The compiled pack. */
  engine: Engine
  /** Where escalations, wallets, tickets and events are kept (default: `Store.memory()`). */
  store?: Store
  /** The caller of a request, or null (answered with 401). Default: the bearer key looked up in `store`. */
  principal?: (req: any) => Principal | null | undefined | Promise<Principal | null | undefined>
  /** Governed paths (default `['/v1/chat/completions']`). */
  paths?: Iterable<string>
  /** Reserve each request's estimated cost on its wallets (default false). */
  budget?: boolean
  /** Largest body read when no body parser ran before (default 4 MiB). */
  maxBody?: number
}

/** Express (or Connect) middleware governing chat completion requests; see express.js. */
export declare function keeptrusts(options: KeeptrustsOptions): (req: any, res: any, next: (err?: unknown) => void) => Promise<void>
