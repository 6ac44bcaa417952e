/**
 * `Origin` validation against DNS rebinding (required by the Streamable HTTP transport). Requests
 * without an `Origin` (non-browser clients) are not affected.
 */

export type OriginPolicy = readonly string[] | ((origin: string) => boolean)

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/** A URL's `hostname` names this machine (as a URL spells it: IPv6 in brackets). */
export function isLoopbackHost (hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname)
}

/** http(s) origins on loopback hosts, any port: the default policy. */
export function isLoopbackOrigin (origin: string): boolean {
  let url: URL
  try {
    url = new URL(origin)
  } catch {
    return false
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && isLoopbackHost(url.hostname)
}

/** A list holds exact origins (`https://app.example.com`), `"loopback"`, or `"*"` for any. */
export function originChecker (policy: OriginPolicy | undefined): (origin: string) => boolean {
  if (policy === undefined) return isLoopbackOrigin
  if (typeof policy === 'function') return policy
  if (policy.includes('*')) return () => true
  const exact = new Set(policy.filter((entry) => entry !== 'loopback').map((entry) => entry.toLowerCase()))
  const loopback = policy.includes('loopback')
  return (origin) => exact.has(origin.toLowerCase()) || (loopback && isLoopbackOrigin(origin))
}
