//! What each provider means beyond its spec: which answers are failures even when the HTTP status says
//! success, which sends may be repeated safely, what their requests, answers and webhooks say about
//! each message, and how failures are retried.
//!
//! One trait, [`Connector`], says all of it; each provider is a folder of this crate that implements
//! it (`kixie/`, `eightbyeight/`, `twilio/`, `vonage/`), and `registry.rs` lists them. Everything else in herald
//! reaches a provider through a [`Provider`] handle from the registry and never names one. The crate
//! does no I/O.
//!
//! Each folder also holds the provider's emulator (`emulator.rs`, see [`emulator`]): how it answers,
//! accepts messages and posts webhooks in herald's sandbox, as a state machine the sandbox drives.
//! The provider modules are public for their emulators' options and constants (a number the
//! emulated account refuses, its default credentials), which tests name on purpose.

mod connector;
pub mod eightbyeight;
pub mod emulator;
mod generic;
mod json;
pub mod kixie;
pub mod message;
pub mod policy;
mod registry;
pub mod specs;
pub mod status;
pub mod twilio;
pub mod vonage;
pub mod webhook;

pub use connector::{
    BatchSplit, Batching, Connector, IdempotencyField, SignedRequest, Verdict, WebhookAuth,
    rewrite_listed_messages,
};
pub use message::{Accepted, OutboundMessage};
pub use policy::{FailureClass, RateLimit, RetryPolicy, parse_retry_after};
pub use registry::Provider;
pub use specs::PublishedSpec;
pub use status::MessageStatus;
pub use webhook::{InboundMessage, Price, StatusUpdate, WebhookError, WebhookEvent};
