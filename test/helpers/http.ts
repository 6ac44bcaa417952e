/** Raw MCP-over-HTTP helpers for tests that need exact status codes and headers. */
/** The body of a JSON-RPC error answer. */
export interface RpcError {
  jsonrpc: '2.0'
  id: string | number | null
  error: { code: number, message: string, data?: unknown }
}

export const ACCEPT_BOTH = 'application/json, text/event-stream'

export function initializeBody (id: number | string = 1, protocolVersion = '2025-11-25'): string {
  return JSON.stringify({
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw-test', version: '1.0.0' } }
  })
}

export function postHeaders (extra: Record<string, string> = {}): Record<string, string> {
  return { 'content-type': 'application/json', accept: ACCEPT_BOTH, ...extra }
}

/** Initializes a session over raw HTTP and returns the gateway session id. */
export async function openSession (url: string, protocolVersion = '2025-11-25'): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: postHeaders(), body: initializeBody(1, protocolVersion) })
  if (res.status !== 200) throw new Error(`initialize failed: HTTP ${res.status}`)
  await res.text()
  const id = res.headers.get('mcp-session-id')
  if (id === null) throw new Error('no session id')
  const ack = await fetch(url, {
    method: 'POST',
    headers: postHeaders({ 'mcp-session-id': id, 'mcp-protocol-version': protocolVersion }),
    body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })
  })
  await ack.text()
  return id
}
