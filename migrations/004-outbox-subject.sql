-- Migration 4: the subject of a mail that opened no ticket, for replies about it
-- ("message too large"). Append-only, like every migration.
ALTER TABLE outbox ADD COLUMN subject TEXT;
