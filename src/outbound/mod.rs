//! Everything postdesk sends: Message-IDs, template rendering, composing the MIME message,
//! the transports and the outbox worker that delivers queued rows.

pub mod compose;
pub mod diagnose;
pub mod guard;
pub mod lease;
pub mod message_id;
pub mod render;
pub mod smtp;
pub mod transport;
pub mod worker;
