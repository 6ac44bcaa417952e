/**
 * Redis failures as the gateway's coded error: a request that needs the store while Redis is away
 * gets 503 with a JSON-RPC error (and `Retry-After`), never a 500 or a hang, and the original
 * error stays as `cause`. Pipelines report a failed command in their results, not by rejecting.
 */
import { GatewayErrors } from '../errors.ts'

type Results = Array<[Error | null, unknown]> | null

export async function guard<T> (store: 'session' | 'event', pending: Promise<T>): Promise<T> {
  let value: T
  try {
    value = await pending
  } catch (err) {
    throw new GatewayErrors.STORE_UNAVAILABLE(store, { cause: err })
  }
  if (Array.isArray(value)) {
    for (const entry of value as NonNullable<Results>) {
      if (Array.isArray(entry) && entry[0] instanceof Error) throw new GatewayErrors.STORE_UNAVAILABLE(store, { cause: entry[0] })
    }
  }
  return value
}
