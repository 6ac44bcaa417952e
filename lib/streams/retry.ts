/**
 * How often the gateway re-opens an upstream stream that dropped, and how long it waits between:
 * doubling from 100 ms, at most 1 s apart. The cap bounds the hand-off gap when another instance
 * takes a stream over: an SDK upstream refuses the resume (409) until it has seen the old
 * connection close, and uncapped doubling turned a moment's delay into a 3 s wait. A POST answer
 * still owed is worth 10 tries over about 7.5 s; a GET stream nobody waits on gives up after about 2.5 s
 * (the client re-opens it), so its client hears of a dead upstream soon.
 */
export const POST_RESUME_TRIES = 10
export const GET_REOPEN_TRIES = 5
const RETRY_BASE_MS = 100
const RETRY_MAX_MS = 1000

export function retryDelay (attempt: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** attempt, RETRY_MAX_MS)
}

/** A wait that keeps no process alive. */
export function delay (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}
