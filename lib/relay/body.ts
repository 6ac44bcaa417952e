import type { Readable } from 'node:stream'

export class BodyTooLargeError extends Error {
  readonly code = 'BODY_TOO_LARGE'
}

/** Reads a whole body, refusing (and destroying the stream) past `limit` bytes. */
export async function readBounded (body: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > limit) {
      body.destroy()
      throw new BodyTooLargeError(`body larger than ${limit} bytes`)
    }
    chunks.push(chunk as Buffer)
  }
  return chunks.length === 1 ? chunks[0] as Buffer : Buffer.concat(chunks, size)
}

/** Stops reading a body nobody will use (a stream that may never end): its connection is closed. */
export function discard (body: Readable): void {
  body.on('error', () => {})
  body.destroy()
}

/** Discards a body we will not use, so its connection goes back to the pool. */
export function drain (body: Readable): void {
  body.on('error', () => {})
  body.resume()
}
