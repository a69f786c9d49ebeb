//! Routing: the pure decisions about one inbound mail — which ticket it belongs to (subject
//! tag, references), whether a robot wrote it, what a person wrote (quote stripping), and what
//! to store and send as a result.

pub mod decide;
pub mod quotes;
pub mod robots;
pub mod tag;
