//! Store-level tests of auto-close and operator close/reopen on an in-memory database.

use super::*;
use crate::lifecycle::is_due_for_auto_close;
use TicketStatus::*;

const H: i64 = 3_600_000;
const T: i64 = 1_700_000_000_000;
const AFTER: Duration = Duration::from_secs(72 * 3600);

fn tracking(n: usize) -> TrackingId {
    let text = format!("AAA-AAA-{:04}", 2000 + n)
        .replace('0', "A")
        .replace('1', "B");
    TrackingId::parse(&text).expect("tracking id")
}

/// Inserts a ticket with these facts (and one customer message with a Message-ID).
fn insert(store: &Store, n: usize, facts: CloseFacts) -> TrackingId {
    let id = tracking(n);
    store
        .conn
        .execute(
            "INSERT INTO tickets (tracking_id, subject, customer_email, customer_name, language,
                 status, created_at, updated_at, last_customer_at, last_agent_at)
             VALUES (?1, 'Printer', 'olena@example.com', 'Olena', 'uk', ?2, ?3, ?3, ?4, ?5)",
            params![
                id.as_str(),
                facts.status.as_str(),
                T - 100 * H,
                facts.last_customer_at,
                facts.last_agent_at
            ],
        )
        .expect("insert ticket");
    let row = store.conn.last_insert_rowid();
    store
        .conn
        .execute(
            "INSERT INTO messages (ticket_id, kind, direction, body, full_text, message_id, created_at)
             VALUES (?1, 'customer', 'in', 'help', 'help', ?2, ?3)",
            params![row, format!("c{n}@client.example"), T - 100 * H],
        )
        .expect("insert message");
    id
}

fn facts(status: TicketStatus, agent: Option<i64>, customer: Option<i64>) -> CloseFacts {
    CloseFacts {
        status,
        last_agent_at: agent,
        last_customer_at: customer,
    }
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).expect("count")
}

#[test]
fn the_due_query_agrees_with_the_pure_rule() {
    let store = Store::open_in_memory().expect("store");
    let now = T + 72 * H;
    let table = [
        facts(Replied, Some(T), None),
        facts(Replied, Some(T), Some(T - H)),
        facts(Replied, Some(T), Some(T)),
        facts(Replied, Some(T + 1), None),
        facts(Replied, Some(T - 60_000), None),
        facts(Replied, Some(T), Some(T + 10 * H)),
        facts(Replied, None, Some(T - H)),
        facts(WaitingReply, Some(T - 10 * H), Some(T)),
        facts(OnHold, Some(T - 10 * H), None),
        facts(InProgress, Some(T - 10 * H), None),
        facts(New, None, Some(T - 200 * H)),
        facts(Resolved, Some(T - 10 * H), None),
    ];
    let mut expected = Vec::new();
    for (n, f) in table.iter().enumerate() {
        let id = insert(&store, n, *f);
        if is_due_for_auto_close(*f, now, AFTER) {
            expected.push(id);
        }
    }
    let mut due: Vec<TrackingId> = store
        .due_for_auto_close(now, AFTER, 100)
        .expect("due")
        .into_iter()
        .map(|d| d.tracking_id)
        .collect();
    due.sort();
    expected.sort();
    assert_eq!(due, expected);
    assert_eq!(due.len(), 4, "{due:?}");
    assert_eq!(
        store.due_for_auto_close(now, AFTER, 1).expect("due").len(),
        1
    );
}

#[test]
fn the_due_query_reads_the_partial_index() {
    let store = Store::open_in_memory().expect("store");
    let mut statement = store
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {DUE_SQL}"))
        .expect("explain");
    let plan: Vec<String> = statement
        .query_map(params![T, 10], |row| row.get::<_, String>(3))
        .expect("plan")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    let plan = plan.join("\n");
    assert!(
        plan.contains("USING INDEX tickets_due_for_auto_close (last_agent_at<?)"),
        "{plan}"
    );
    assert!(!plan.contains("SCAN tickets"), "{plan}");
    assert!(
        !plan.contains("TEMP B-TREE"),
        "the index gives the order: {plan}"
    );
}

#[test]
fn auto_close_resolves_records_and_queues_in_one_go() {
    let mut store = Store::open_in_memory().expect("store");
    let id = insert(&store, 1, facts(Replied, Some(T), Some(T - H)));
    let closer = Closer::Auto {
        as_of_ms: T + 72 * H - 60_000,
        after: AFTER,
    };
    let early = store
        .close_ticket(&id, closer, T + 80 * H, "m1@x")
        .expect("close");
    assert_eq!(
        early,
        StatusChange::Refused {
            status: Replied,
            refusal: Refusal::NotDue
        }
    );
    let closer = Closer::Auto {
        as_of_ms: T + 72 * H,
        after: AFTER,
    };
    let change = store
        .close_ticket(&id, closer, T + 80 * H, "m2@x")
        .expect("close");
    assert_eq!(
        change,
        StatusChange::Changed {
            from: Replied,
            to: Resolved,
            queued: 1
        }
    );
    let (status, closed_at, closed_by): (String, i64, String) = store
        .conn
        .query_row(
            "SELECT status, closed_at, closed_by FROM tickets",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("ticket");
    assert_eq!(
        (status.as_str(), closed_at, closed_by.as_str()),
        ("resolved", T + 80 * H, "auto")
    );
    let event: (String, String, String, String) = store
        .conn
        .query_row(
            "SELECT actor, kind, from_status, to_status FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("event");
    assert_eq!(
        event,
        (
            "auto".into(),
            "status".into(),
            "replied".into(),
            "resolved".into()
        )
    );
    let outbox: (String, String, String, String, String, bool) = store
        .conn
        .query_row(
            "SELECT template, recipient_email, language, message_id, in_reply_to, automatic FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .expect("outbox");
    assert_eq!(
        outbox,
        (
            "ticket_closed".into(),
            "olena@example.com".into(),
            "uk".into(),
            "m2@x".into(),
            "c1@client.example".into(),
            true
        )
    );
    // A second sweep finds nothing: the ticket is no longer due.
    assert!(store
        .due_for_auto_close(T + 200 * H, AFTER, 10)
        .expect("due")
        .is_empty());
}

#[test]
fn a_customer_reply_between_the_read_and_the_write_wins() {
    let mut store = Store::open_in_memory().expect("store");
    let id = insert(&store, 1, facts(Replied, Some(T), None));
    let due = store
        .due_for_auto_close(T + 72 * H, AFTER, 10)
        .expect("due");
    assert_eq!(due.len(), 1);
    // The customer's mail lands now; even if a bug left the status `replied`, the UPDATE's
    // own condition on last_customer_at refuses the close.
    for status in ["replied", "waiting_reply"] {
        store
            .conn
            .execute(
                "UPDATE tickets SET status = ?1, last_customer_at = ?2",
                params![status, T + 71 * H],
            )
            .expect("customer reply");
        let closer = Closer::Auto {
            as_of_ms: T + 72 * H,
            after: AFTER,
        };
        let change = store
            .close_ticket(&id, closer, T + 72 * H, "m@x")
            .expect("close");
        assert!(
            matches!(change, StatusChange::Refused { .. }),
            "{status}: {change:?}"
        );
    }
    assert_eq!(count(&store, "SELECT count(*) FROM outbox"), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM events"), 0);
}

#[test]
fn operator_close_and_reopen() {
    let mut store = Store::open_in_memory().expect("store");
    let id = insert(&store, 1, facts(OnHold, Some(T), None));
    let closed = store
        .close_ticket(&id, Closer::Operator, T, "m1@x")
        .expect("close");
    assert_eq!(
        closed,
        StatusChange::Changed {
            from: OnHold,
            to: Resolved,
            queued: 1
        }
    );
    let again = store
        .close_ticket(&id, Closer::Operator, T + 1, "m2@x")
        .expect("close");
    assert_eq!(
        again,
        StatusChange::Refused {
            status: Resolved,
            refusal: Refusal::AlreadyResolved
        }
    );
    assert_eq!(count(&store, "SELECT count(*) FROM outbox"), 1);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM tickets WHERE closed_by = 'cli'"
        ),
        1
    );

    let reopened = store.reopen_ticket(&id, T + 2).expect("reopen");
    assert_eq!(
        reopened,
        StatusChange::Changed {
            from: Resolved,
            to: WaitingReply,
            queued: 0
        }
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM tickets WHERE status = 'waiting_reply' AND closed_at IS NULL AND closed_by IS NULL"
        ),
        1
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM outbox"),
        1,
        "reopen sends nothing"
    );
    assert_eq!(
        store.reopen_ticket(&id, T + 3).expect("reopen"),
        StatusChange::Refused {
            status: WaitingReply,
            refusal: Refusal::NotResolved
        }
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM events WHERE actor = 'cli' AND kind = 'status'"
        ),
        2
    );
    let unknown = tracking(99);
    assert_eq!(
        store
            .close_ticket(&unknown, Closer::Operator, T, "m3@x")
            .expect("close"),
        StatusChange::NotFound
    );
    assert_eq!(
        store.reopen_ticket(&unknown, T).expect("reopen"),
        StatusChange::NotFound
    );
}
