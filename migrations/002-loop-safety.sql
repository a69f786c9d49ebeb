-- Migration 2: loop safety. Append-only, like every migration.

-- Addresses that automatic mail must not go to until `until_at` (ms): set by a permanent
-- bounce (5.x.x) for 60 days.
CREATE TABLE suppressions (
    address    TEXT    PRIMARY KEY,
    reason     TEXT    NOT NULL,
    until_at   INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- A bounce that quotes one of our Message-IDs marks that outbound mail.
ALTER TABLE outbox ADD COLUMN bounced_at INTEGER;
ALTER TABLE outbox ADD COLUMN bounce_status TEXT;

-- Counting recent automatic mails per address (the per-hour rate limit).
CREATE INDEX outbox_automatic_by_recipient ON outbox (recipient_email, created_at) WHERE automatic = 1;
