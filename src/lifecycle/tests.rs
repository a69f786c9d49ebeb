//! Table tests of the state machine, agent commands and the auto-close rule.

use super::*;
use TicketStatus::*;

#[test]
fn customer_message_transitions() {
    let table = [
        (New, true, Some(New)),
        (WaitingReply, true, Some(WaitingReply)),
        (Replied, true, Some(WaitingReply)),
        (InProgress, true, Some(WaitingReply)),
        (OnHold, true, Some(WaitingReply)),
        (Resolved, true, Some(WaitingReply)),
        (Resolved, false, None),
        (Replied, false, Some(WaitingReply)),
    ];
    for (from, reopen, expected) in table {
        assert_eq!(
            after_customer_message(from, reopen),
            expected,
            "{from} reopen={reopen}"
        );
    }
}

#[test]
fn agent_message_transitions() {
    let table = [
        (New, None, Replied),
        (Resolved, None, Replied),
        (WaitingReply, Some(AgentCommand::Close), Resolved),
        (WaitingReply, Some(AgentCommand::Note), WaitingReply),
        (New, Some(AgentCommand::Note), New),
        (Replied, Some(AgentCommand::Hold), OnHold),
        (Replied, Some(AgentCommand::Progress), InProgress),
        (Resolved, Some(AgentCommand::Reopen), WaitingReply),
    ];
    for (from, command, expected) in table {
        assert_eq!(
            after_agent_message(from, command),
            expected,
            "{from} {command:?}"
        );
    }
}

#[test]
fn agent_commands_are_parsed_from_the_first_non_empty_line() {
    let table: [(&str, Option<AgentCommand>, &str); 8] = [
        (
            "#close\nThanks, fixed.",
            Some(AgentCommand::Close),
            "Thanks, fixed.",
        ),
        ("\n\n  #CLOSE  \n", Some(AgentCommand::Close), ""),
        (
            "#note\ncustomer is VIP\n-- \nОлена",
            Some(AgentCommand::Note),
            "customer is VIP\n-- \nОлена",
        ),
        ("#Hold", Some(AgentCommand::Hold), ""),
        (
            "#progress\nlooking",
            Some(AgentCommand::Progress),
            "looking",
        ),
        ("#reopen", Some(AgentCommand::Reopen), ""),
        ("#closed is not a command", None, "#closed is not a command"),
        ("Hello\n#close", None, "Hello\n#close"),
    ];
    for (text, command, rest) in table {
        assert_eq!(
            parse_agent_command(text),
            (command, rest.to_string()),
            "{text:?}"
        );
    }
}

#[test]
fn auto_close_waits_exactly_the_configured_time() {
    const H: i64 = 3_600_000;
    let after = Duration::from_secs(72 * 3600);
    let t = 1_700_000_000_000;
    let replied = |customer: Option<i64>| CloseFacts {
        status: Replied,
        last_agent_at: Some(t),
        last_customer_at: customer,
    };
    assert!(!is_due_for_auto_close(
        replied(None),
        t + 72 * H - 60_000,
        after
    ));
    assert!(is_due_for_auto_close(replied(None), t + 72 * H, after));
    assert!(is_due_for_auto_close(
        replied(Some(t - H)),
        t + 73 * H,
        after
    ));
    assert!(!is_due_for_auto_close(
        replied(Some(t + 10 * H)),
        t + 500 * H,
        after
    ));
    for status in [New, WaitingReply, InProgress, OnHold, Resolved] {
        let facts = CloseFacts {
            status,
            ..replied(None)
        };
        assert!(
            !is_due_for_auto_close(facts, t + 500 * H, after),
            "{status}"
        );
    }
    let never_answered = CloseFacts {
        last_agent_at: None,
        ..replied(None)
    };
    assert!(!is_due_for_auto_close(never_answered, t + 500 * H, after));
}

/// Every status × every event: the README's transition table.
#[test]
fn every_transition() {
    use AgentCommand as C;
    let events = [
        Event::CustomerMail {
            reopen_on_reply: true,
        },
        Event::CustomerMail {
            reopen_on_reply: false,
        },
        Event::AgentMail(None),
        Event::AgentMail(Some(C::Close)),
        Event::AgentMail(Some(C::Note)),
        Event::AgentMail(Some(C::Hold)),
        Event::AgentMail(Some(C::Progress)),
        Event::AgentMail(Some(C::Reopen)),
        Event::AutoClose,
        Event::OperatorClose,
        Event::OperatorReopen,
    ];
    let no_new = Err(Refusal::OpensNewTicket);
    let not_due = Err(Refusal::NotWaitingOnCustomer);
    let closed = Err(Refusal::AlreadyResolved);
    let open = Err(Refusal::NotResolved);
    // One row per status, one column per event above.
    let table: [(TicketStatus, [Result<TicketStatus, Refusal>; 11]); 6] = [
        (
            New,
            [
                Ok(New),
                Ok(New),
                Ok(Replied),
                Ok(Resolved),
                Ok(New),
                Ok(OnHold),
                Ok(InProgress),
                Ok(WaitingReply),
                not_due,
                Ok(Resolved),
                open,
            ],
        ),
        (
            WaitingReply,
            [
                Ok(WaitingReply),
                Ok(WaitingReply),
                Ok(Replied),
                Ok(Resolved),
                Ok(WaitingReply),
                Ok(OnHold),
                Ok(InProgress),
                Ok(WaitingReply),
                not_due,
                Ok(Resolved),
                open,
            ],
        ),
        (
            Replied,
            [
                Ok(WaitingReply),
                Ok(WaitingReply),
                Ok(Replied),
                Ok(Resolved),
                Ok(Replied),
                Ok(OnHold),
                Ok(InProgress),
                Ok(WaitingReply),
                Ok(Resolved),
                Ok(Resolved),
                open,
            ],
        ),
        (
            InProgress,
            [
                Ok(WaitingReply),
                Ok(WaitingReply),
                Ok(Replied),
                Ok(Resolved),
                Ok(InProgress),
                Ok(OnHold),
                Ok(InProgress),
                Ok(WaitingReply),
                not_due,
                Ok(Resolved),
                open,
            ],
        ),
        (
            OnHold,
            [
                Ok(WaitingReply),
                Ok(WaitingReply),
                Ok(Replied),
                Ok(Resolved),
                Ok(OnHold),
                Ok(OnHold),
                Ok(InProgress),
                Ok(WaitingReply),
                not_due,
                Ok(Resolved),
                open,
            ],
        ),
        (
            Resolved,
            [
                Ok(WaitingReply),
                no_new,
                Ok(Replied),
                Ok(Resolved),
                Ok(Resolved),
                Ok(OnHold),
                Ok(InProgress),
                Ok(WaitingReply),
                not_due,
                closed,
                Ok(WaitingReply),
            ],
        ),
    ];
    for (from, row) in table {
        for (event, expected) in events.iter().zip(row) {
            assert_eq!(transition(from, *event), expected, "{from} + {event:?}");
        }
    }
}

#[test]
fn events_name_their_actor_and_closing_records_it() {
    let table = [
        (
            Event::CustomerMail {
                reopen_on_reply: true,
            },
            Actor::Customer,
        ),
        (Event::AgentMail(None), Actor::Agent),
        (Event::AutoClose, Actor::Auto),
        (Event::OperatorClose, Actor::Cli),
        (Event::OperatorReopen, Actor::Cli),
    ];
    for (event, actor) in table {
        assert_eq!(event.actor(), actor, "{event:?}");
    }
    let marks = [
        (Replied, Resolved, Actor::Auto, ClosedMark::Set(Actor::Auto)),
        (OnHold, Resolved, Actor::Cli, ClosedMark::Set(Actor::Cli)),
        (Resolved, Resolved, Actor::Agent, ClosedMark::Keep),
        (Resolved, WaitingReply, Actor::Customer, ClosedMark::Clear),
        (Replied, WaitingReply, Actor::Customer, ClosedMark::Clear),
    ];
    for (from, to, actor, mark) in marks {
        assert_eq!(closed_mark(from, to, actor), mark, "{from} → {to}");
    }
}

/// A ticket's life as the rules see it: status and the two timestamps, with events applied
/// at given times the way the store applies them.
#[derive(Debug, Clone, Copy)]
struct Life {
    facts: CloseFacts,
}

impl Life {
    fn new(opened_at: i64) -> Life {
        Life {
            facts: CloseFacts {
                status: New,
                last_agent_at: None,
                last_customer_at: Some(opened_at),
            },
        }
    }

    fn apply(&mut self, event: Event, at: i64) {
        if let Ok(to) = transition(self.facts.status, event) {
            self.facts.status = to;
        }
        match event {
            Event::CustomerMail { .. } => self.facts.last_customer_at = Some(at),
            Event::AgentMail(None | Some(AgentCommand::Close)) => {
                self.facts.last_agent_at = Some(at)
            }
            _ => {}
        }
    }

    /// What a sweep at `now` does.
    fn sweep(&mut self, now: i64) -> bool {
        let due = is_due_for_auto_close(self.facts, now, HOURS_72);
        if due {
            self.apply(Event::AutoClose, now);
        }
        due
    }
}

const H: i64 = 3_600_000;
const HOURS_72: Duration = Duration::from_secs(72 * 3600);
const T: i64 = 1_700_000_000_000;
const CUSTOMER: Event = Event::CustomerMail {
    reopen_on_reply: true,
};

#[test]
fn a_silent_customer_is_closed_at_72_hours_not_a_minute_before() {
    let mut life = Life::new(T - H);
    life.apply(Event::AgentMail(None), T);
    assert!(!life.sweep(T + 72 * H - 60_000), "T+71h59m");
    assert_eq!(life.facts.status, Replied);
    assert!(life.sweep(T + 72 * H), "T+72h");
    assert_eq!(life.facts.status, Resolved);
    assert!(!life.sweep(T + 100 * H), "closing twice");
}

#[test]
fn a_customer_reply_stops_the_clock_until_the_next_agent_reply() {
    let mut life = Life::new(T - H);
    life.apply(Event::AgentMail(None), T);
    life.apply(CUSTOMER, T + 10 * H);
    for hours in [72, 100, 1000] {
        assert!(!life.sweep(T + hours * H), "T+{hours}h");
    }
    let answer = T + 1000 * H;
    life.apply(Event::AgentMail(None), answer);
    assert!(!life.sweep(answer + 71 * H));
    assert!(life.sweep(answer + 72 * H));
}

#[test]
fn on_hold_and_in_progress_never_close() {
    for command in [AgentCommand::Hold, AgentCommand::Progress] {
        let mut life = Life::new(T - H);
        life.apply(Event::AgentMail(None), T);
        life.apply(Event::AgentMail(Some(command)), T + H);
        assert!(!life.sweep(T + 10_000 * H), "{command:?}");
        // A note keeps the status and does not restart the clock.
        life.apply(Event::AgentMail(Some(AgentCommand::Note)), T + 2 * H);
        assert!(!life.sweep(T + 10_000 * H), "{command:?} + note");
    }
}

#[test]
fn a_closed_ticket_reopened_by_the_customer_starts_over() {
    let mut life = Life::new(T - H);
    life.apply(Event::AgentMail(None), T);
    assert!(life.sweep(T + 72 * H));
    life.apply(CUSTOMER, T + 80 * H);
    assert_eq!(life.facts.status, WaitingReply);
    assert!(!life.sweep(T + 500 * H), "waits for an agent");
    let answer = T + 500 * H;
    life.apply(Event::AgentMail(None), answer);
    assert!(!life.sweep(answer + 72 * H - 1));
    assert!(life.sweep(answer + 72 * H));
}
