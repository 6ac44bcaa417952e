/** The ordered close: phases one after another, steps of a phase together, failures logged. */
import t from 'tap'
import { ShutdownSequence } from '../../lib/shutdown.ts'
import type { Logger } from '../../lib/logger.ts'

t.test('phases run in order; the steps of one phase run together; a failed step does not stop the close', async (t) => {
  const errors: unknown[] = []
  const log: Logger = { debug () {}, info () {}, warn () {}, error (obj: unknown) { errors.push(obj) } }
  const sequence = new ShutdownSequence()
  const events: string[] = []
  let releaseFirst: () => void = () => {}
  sequence.add('sockets', 'sockets', async () => { events.push('sockets') })
  sequence.add('drain', 'slow drain', async () => {
    events.push('drain 1 starts')
    await new Promise<void>((resolve) => { releaseFirst = resolve })
    events.push('drain 1 ends')
  })
  sequence.add('drain', 'quick drain', async () => {
    events.push('drain 2 starts')
    // Runs while the slow one waits: releasing it from here proves they run together.
    releaseFirst()
  })
  sequence.add('end', 'failing end', async () => { throw new Error('store away') })
  sequence.add('end', 'end', async () => { events.push('end') })
  const first = sequence.run(log)
  t.equal(sequence.run(log), first, 'a second close waits for the same run')
  await first
  t.same(events, ['drain 1 starts', 'drain 2 starts', 'drain 1 ends', 'end', 'sockets'])
  t.match(errors, [{ phase: 'end', step: 'failing end', err: { message: 'store away' } }])
  t.throws(() => sequence.add('end', 'late', async () => {}), /added while the gateway closes/)
})
