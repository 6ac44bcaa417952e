/**
 * The gateway's close, in one place and one order. Plugins add steps to a phase; at close the
 * phases run one after another, the steps of one phase together:
 * - `drain`: answers on their way may finish (POST streams, WebSocket calls), each step within
 *   its own drain timeout. Together, so the budget is the longest drain, not their sum.
 * - `end`: every client stream ends (with a `retry:` hint where it can resume), leases go back.
 * - `sockets`: client sockets left without a request are ended, so `close()` waits on none.
 * A step that fails is logged and the close goes on: a store error must not keep streams open.
 */
import type { Logger } from './logger.ts'

export const SHUTDOWN_PHASES = ['drain', 'end', 'sockets'] as const
export type ShutdownPhase = typeof SHUTDOWN_PHASES[number]

interface Step {
  name: string
  run: () => Promise<void>
}

export class ShutdownSequence {
  private readonly steps: Record<ShutdownPhase, Step[]> = { drain: [], end: [], sockets: [] }
  private running: Promise<void> | undefined

  add (phase: ShutdownPhase, name: string, run: () => Promise<void>): void {
    if (this.running !== undefined) throw new Error(`shutdown step "${name}" added while the gateway closes`)
    this.steps[phase].push({ name, run })
  }

  /** Runs every phase in order; a second call gets the first one's promise. */
  run (log: Logger): Promise<void> {
    this.running ??= this.runPhases(log)
    return this.running
  }

  private async runPhases (log: Logger): Promise<void> {
    for (const phase of SHUTDOWN_PHASES) {
      const steps = this.steps[phase]
      const results = await Promise.allSettled(steps.map(async (step) => { await step.run() }))
      for (const [index, result] of results.entries()) {
        if (result.status === 'rejected') log.error({ err: result.reason, phase, step: steps[index]?.name }, 'a shutdown step failed; the close goes on')
      }
    }
  }
}
