//! Tierdesk's integration tests: one binary, each test on its own real
//! server (HTTP on 127.0.0.1, port 0) over its own SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod assignment;
mod auth;
mod bad_input;
mod bench;
mod bulk;
mod chat;
mod chat_offline;
mod cli;
mod cli_inbox;
mod concurrency;
mod durability;
mod escalation;
mod events;
mod harness;
mod imap_intake;
mod jobs;
mod kb;
mod kb_generate;
mod kb_limits;
mod lifecycle;
mod macros;
mod mail;
mod migrate_data;
mod pg;
mod portal_link;
mod process;
mod rules;
mod sla;
mod smtp_intake;
mod sse;
mod tags;
mod tier_views;
mod views;
mod web;
mod web_admin;
mod web_admin_config;
mod web_browser;
mod web_kb;
mod web_runbooks;
