//! postdesk: a mail-to-ticket gateway. This crate root only lists the modules so that the
//! binary (`main.rs`) and the integration tests in `tests/` can drive them.

pub mod model;
