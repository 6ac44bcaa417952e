/**
 * Held calls at their edges: a store that loses a call (a Redis failover) never leaves its hold
 * waiting past its time; one principal cannot take every place; a store that cannot be subscribed
 * to at start is tried again; the first decision wins over a later one.
 */
import t from 'tap'
import { Approvals, type HoldRequest } from '../../lib/approval/approvals.ts'
import { MemoryApprovalStore, type ApprovalDecision } from '../../lib/approval/store.ts'
import { DEFAULT_REDACT, Redactor } from '../../lib/audit/record.ts'

const log = { debug () {}, info () {}, warn () {}, error () {} }
// The holds' timers are unref()ed (a server keeps the process alive); here, this does.
const alive = setInterval(() => {}, 1000)
t.teardown(() => { clearInterval(alive) })
const request = (principal: string, requestId = 1): HoldRequest => ({ rule: 'r', approvers: null, principal, session: null, upstream: 'u', member: null, tool: 't', requestId })

function approvals (store = new MemoryApprovalStore()): Approvals {
  const out = new Approvals({ store, redactor: new Redactor(DEFAULT_REDACT), log })
  t.teardown(() => out.close())
  return out
}

t.test('a store that lost the call: the hold ends at its time, as a timeout', async (t) => {
  class Forgetful extends MemoryApprovalStore {
    override async decide (): Promise<boolean> { return false }
    override async decision (): Promise<ApprovalDecision | undefined> { return undefined }
  }
  const held = approvals(new Forgetful())
  const decision = await held.hold(request('p'), {}, 50, undefined)
  t.equal(decision.outcome, 'timeout')
  t.equal(held.counts.timeout, 1)
})

t.test('one principal holds at most 100 calls at once; others still can', async (t) => {
  const held = approvals()
  const waits = Array.from({ length: 100 }, async (_, i) => await held.hold(request('greedy', i), {}, 60_000, undefined))
  await t.rejects(held.hold(request('greedy', 100), {}, 60_000, undefined), /greedy has 100 calls waiting/)
  const other = held.hold(request('polite'), { a: 1 }, 60_000, undefined)
  const pending = await (async () => { for (let i = 0; i < 100; i++) { const list = await held.pending(); if (list.length === 101) return list; await new Promise((resolve) => setImmediate(resolve)) } return await held.pending() })()
  t.equal(pending.length, 101)
  const polite = pending.find((call) => call.principal === 'polite')
  t.equal(await held.decide(polite?.id as string, true, 'ops'), 'decided')
  t.not(await held.decide(polite?.id as string, false, 'ops'), 'decided', 'the first decision wins (a later one finds it decided, or gone)')
  t.equal((await other).outcome, 'approved')
  await held.cancelAll()
  t.same((await Promise.all(waits)).map((d) => d.outcome), Array(100).fill('cancelled'), 'closing cancels what waits')
})

t.test('a subscription that fails at start is tried again by the next call', async (t) => {
  let tries = 0
  class Flaky extends MemoryApprovalStore {
    override async subscribe (listener: Parameters<MemoryApprovalStore['subscribe']>[0]): Promise<void> {
      if (++tries === 1) throw new Error('store away')
      await super.subscribe(listener)
    }
  }
  const held = approvals(new Flaky())
  await t.rejects(held.start(), /store away/)
  await held.start()
  t.equal(tries, 2)
})
