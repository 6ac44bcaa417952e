/** The slice of a pino logger the core uses, so `lib/` needs neither Fastify nor pino. */
export interface Logger {
  debug (obj: object, msg: string): void
  info (obj: object, msg: string): void
  warn (obj: object, msg: string): void
  error (obj: object, msg: string): void
}
