-- Migration 3: the IMAP intake cursor. Append-only, like every migration.

-- Per mailbox: the UIDVALIDITY seen and the highest UID handled. A UIDVALIDITY change resets
-- the cursor; the inbound dedupe record absorbs the replay.
CREATE TABLE imap_cursor (
    mailbox     TEXT    PRIMARY KEY,
    uidvalidity INTEGER NOT NULL,
    last_uid    INTEGER NOT NULL
);
