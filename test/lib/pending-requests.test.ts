/** The one tracker of what an exchange still owes: dropped responses told apart and counted. */
import t from 'tap'
import { PendingRequests, type DropReason } from '../../lib/relay/pending.ts'
import { acceptEventData, dropUnasked } from '../../lib/relay/messages.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'

const answer = (id: number): string => JSON.stringify({ jsonrpc: '2.0', id, result: {} })

t.test('a stream\'s events: the answer passes once; strays, duplicates and cancelled requests\' answers are dropped, each with its reason', async (t) => {
  const drops: DropReason[] = []
  const pending = new PendingRequests([1, 2, 3], (reason) => drops.push(reason))
  t.equal(pending.size, 3, 'the ids given are open')
  t.ok(acceptEventData(answer(1), pending, undefined), 'the answer passes')
  t.notOk(acceptEventData(answer(1), pending, undefined), 'a second answer does not')
  t.notOk(acceptEventData(answer(9), pending, undefined), 'nor one nobody asked for')
  t.ok(pending.cancel(2), 'cancelled while open')
  t.notOk(pending.cancel(2), 'once')
  t.notOk(acceptEventData(answer(2), pending, undefined), 'an answer after the cancellation is dropped')
  t.ok(acceptEventData(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } }), pending, undefined), 'a null-id error passes: it cannot be matched')
  t.same(drops, ['duplicate', 'stray', 'cancelled'])
  t.same([...pending], [3], 'what is still owed')
})

t.test('a JSON body: strays and second answers are dropped and counted; the open ids are left to the caller', async (t) => {
  const drops: DropReason[] = []
  const pending = new PendingRequests([1, 2], (reason) => drops.push(reason))
  const body = [1, 9, 1, 2].map((id) => JSON.parse(answer(id)) as JsonRpcMessage)
  const cleaned = dropUnasked(body, pending)
  t.same(cleaned.messages.map((m) => (m as { id: number }).id), [1, 2])
  t.equal(cleaned.changed, true)
  t.same(drops, ['stray', 'duplicate'])
  t.equal(pending.size, 2, 'not changed')
})
