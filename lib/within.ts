/**
 * A promise bounded in time: it settles as `promise` does, or rejects once `ms` have passed,
 * naming `what` did not answer. The timer is cleared either way and never keeps the process alive.
 * (Readiness probes, the admin API's upstream health, the member-up metric.)
 */
export function within<T> (promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => { reject(new Error(`${what} did not answer within ${ms} ms`)) }, ms)
    timer.unref()
  })
  return Promise.race([promise, timeout]).finally(() => { clearTimeout(timer) })
}
