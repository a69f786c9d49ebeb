-- Migration 5: who holds an outbox claim. Append-only, like every migration.

-- `boot_id/pid_namespace/pid/start_time` of the process that set the row to 'sending'
-- (src/outbound/lease.rs). A claim whose owner is provably dead is released at once instead
-- of when its lease expires. NULL: claimed by a process that could not tell (lease only).
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
