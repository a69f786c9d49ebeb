-- postdesk database schema, migration 1.
--
-- Applied by src/store/migrate.rs inside one transaction, guarded by PRAGMA user_version.
-- Migrations are append-only: never edit or reorder a released one; add a new one instead.
-- Timestamps are INTEGER milliseconds since the Unix epoch, UTC.

-- One support request. `id` is the sequential ticket number shown to people.
CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY,
    tracking_id      TEXT    NOT NULL UNIQUE,
    subject          TEXT    NOT NULL,
    customer_email   TEXT    NOT NULL,
    customer_name    TEXT    NOT NULL DEFAULT '',
    language         TEXT    NOT NULL DEFAULT 'en',
    status           TEXT    NOT NULL CHECK (status IN
                         ('new', 'waiting_reply', 'replied', 'in_progress', 'on_hold', 'resolved')),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    last_customer_at INTEGER,
    last_agent_at    INTEGER,
    last_replier     TEXT,              -- 'customer' or the agent's display name
    closed_at        INTEGER,
    closed_by        TEXT CHECK (closed_by IN ('agent', 'auto', 'customer', 'cli')),
    previous_tracking_id TEXT           -- set when a reply to a closed ticket opened this one
);
CREATE INDEX tickets_by_customer ON tickets (customer_email);
CREATE INDEX tickets_by_status ON tickets (status, updated_at);
-- Auto-close looks only at tickets waiting for the customer: O(due), not O(all tickets).
CREATE INDEX tickets_due_for_auto_close ON tickets (last_agent_at) WHERE status = 'replied';

-- One thread entry. Inbound mail keeps its raw bytes (content-addressed file, raw_sha256).
CREATE TABLE messages (
    id            INTEGER PRIMARY KEY,
    ticket_id     INTEGER NOT NULL REFERENCES tickets (id),
    kind          TEXT    NOT NULL CHECK (kind IN ('customer', 'agent', 'note', 'auto', 'system')),
    direction     TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    sender_email  TEXT    NOT NULL DEFAULT '',
    sender_name   TEXT    NOT NULL DEFAULT '',
    subject       TEXT    NOT NULL DEFAULT '',
    body          TEXT    NOT NULL,      -- what a person wrote (quoted history stripped)
    full_text     TEXT    NOT NULL,      -- the whole decoded text
    message_id    TEXT,                  -- RFC 5322 Message-ID without angle brackets
    in_reply_to   TEXT    NOT NULL DEFAULT '',
    refs          TEXT    NOT NULL DEFAULT '',  -- References, space-separated
    raw_sha256    TEXT,
    created_at    INTEGER NOT NULL
);
CREATE INDEX messages_by_ticket ON messages (ticket_id, id);
CREATE INDEX messages_by_message_id ON messages (message_id) WHERE message_id IS NOT NULL;

-- Attachments live on disk under data_dir/blobs, named by their SHA-256. A dropped
-- attachment keeps a row with the reason and no content.
CREATE TABLE attachments (
    id             INTEGER PRIMARY KEY,
    message_id     INTEGER NOT NULL REFERENCES messages (id),
    name           TEXT    NOT NULL,
    content_type   TEXT    NOT NULL,
    size           INTEGER NOT NULL,
    sha256         TEXT,
    dropped_reason TEXT,
    CHECK ((sha256 IS NULL) <> (dropped_reason IS NULL))
);
CREATE INDEX attachments_by_message ON attachments (message_id);

-- Every inbound mail ever seen, with what became of it. The UNIQUE dedupe key (Message-ID,
-- or sha256 of the raw bytes) is what makes intake idempotent; rows with outcome
-- 'quarantined' are the quarantine list.
CREATE TABLE inbound (
    id           INTEGER PRIMARY KEY,
    dedupe_key   TEXT    NOT NULL UNIQUE,
    outcome      TEXT    NOT NULL CHECK (outcome IN
                     ('ticket_opened', 'appended', 'attached_auto', 'ignored', 'quarantined')),
    reason       TEXT,
    ticket_id    INTEGER REFERENCES tickets (id),
    message_row  INTEGER REFERENCES messages (id),
    sender       TEXT    NOT NULL DEFAULT '',
    subject      TEXT    NOT NULL DEFAULT '',
    size         INTEGER NOT NULL,
    raw_sha256   TEXT,
    source       TEXT    NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX inbound_quarantined ON inbound (id) WHERE outcome = 'quarantined';

-- The transactional outbox: written in the same transaction as the change that caused it,
-- rendered and sent by the outbox worker.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    ticket_id        INTEGER REFERENCES tickets (id),   -- NULL for replies about mail that made no ticket
    cause_message    INTEGER REFERENCES messages (id),
    template         TEXT    NOT NULL,
    recipient_email  TEXT    NOT NULL,
    recipient_name   TEXT    NOT NULL DEFAULT '',
    language         TEXT    NOT NULL,
    automatic        INTEGER NOT NULL,
    message_id       TEXT    NOT NULL UNIQUE,
    in_reply_to      TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN
                         ('pending', 'sending', 'sent', 'failed', 'suppressed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    sent_at          INTEGER
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'sending');

-- Who changed what, when: every status transition and notable fact about a ticket.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY,
    ticket_id   INTEGER NOT NULL REFERENCES tickets (id),
    at          INTEGER NOT NULL,
    actor       TEXT    NOT NULL,      -- customer | agent | auto | cli | system
    kind        TEXT    NOT NULL,      -- opened | status | message | note | bounce …
    from_status TEXT,
    to_status   TEXT,
    detail      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_by_ticket ON events (ticket_id, id);
