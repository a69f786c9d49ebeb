//! postdesk: a mail-to-ticket gateway. This crate root only lists the modules so that the
//! binary (`main.rs`) and the integration tests in `tests/` can drive them. The README's
//! Architecture section is the map.

pub mod app;
pub mod blobs;
pub mod check;
pub mod cli;
pub mod config;
pub mod intake;
pub mod jobs;
pub mod lifecycle;
pub mod model;
pub mod ops;
pub mod outbound;
pub mod route;
pub mod secret;
pub mod service;
pub mod signing;
pub mod store;
pub mod templates;
pub mod vitals;
pub mod web;
