/** An audit sink that keeps events in memory, for tests that inspect what was recorded. */
import type { AuditEvent, AuditSink } from '../../src/audit/types.js'

export class MemoryAudit implements AuditSink {
  events: AuditEvent[] = []

  record(event: AuditEvent): void {
    this.events.push(event)
  }

  /** The recorded events of one type, typed as that type. */
  of<T extends AuditEvent['type']>(type: T): Extract<AuditEvent, { type: T }>[] {
    return this.events.filter(e => e.type === type) as Extract<AuditEvent, { type: T }>[]
  }
}
