//! Notices from other nodes: one connection that `LISTEN`s, on a thread of its own.
//!
//! PostgreSQL delivers a `NOTIFY` to every listening connection when the transaction that sent it
//! commits, never before and never for a rollback. Two channels are heard:
//! - consent changes: a node applies them as it hears them, so an opt-out received by one node stops
//!   the sends of every node within a round trip;
//! - work: the due time of each run written `waiting` ([`Notice::WorkDue`]), so that another node
//!   claims it when it comes due rather than at its next poll. A node wakes the runs it parks itself,
//!   so what its own writer announced is not passed on (PostgreSQL names the sending server process:
//!   it is compared with the writer's).
//!
//! A lost connection is opened again; what was announced meanwhile was not heard, so the listener then
//! sends [`Notice::Resync`] and the node reads the state again.
//!
//! The same connection hears changes to users, tokens and secrets, which the node's read cache
//! forgets (`cache`); while it is down, nothing is kept.

use super::cache::{CACHE_CHANNEL, ReadCache};
use super::tx::{CONSENT_CHANNEL, WORK_CHANNEL, consent_from_json};
use crate::Notice;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

const RECONNECT_WAIT: Duration = Duration::from_millis(500);

/// The server process of this store's writer connection (0 before it is known), whose work notices
/// are its own node's.
pub(super) type WriterProcess = Arc<AtomicI32>;

/// Starts listening; the thread ends once every receiver and `stop` are dropped.
pub(super) fn start(
    config: tokio_postgres::Config,
    notices: broadcast::Sender<Notice>,
    writer: WriterProcess,
    cache: Arc<ReadCache>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let stopped = Arc::clone(&cache);
    std::thread::Builder::new().name("herald-db-listen".into()).spawn(move || {
        // Once nothing listens, nothing read may be kept.
        let _forget = ForgetOnDrop(stopped);
        runtime.block_on(async move {
            let mut first = true;
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    lost = listen(&config, &notices, &writer, &cache, first) => {
                        cache.hearing(false);
                        if let Err(error) = lost {
                            tracing::warn!(%error, "the connection that hears other nodes was lost; opening it again");
                        }
                    }
                }
                first = false;
                tokio::select! {
                    _ = &mut stop => return,
                    () = tokio::time::sleep(RECONNECT_WAIT) => {}
                }
            }
        })
    })?;
    Ok(())
}

/// Listens until the connection ends.
async fn listen(
    config: &tokio_postgres::Config,
    notices: &broadcast::Sender<Notice>,
    writer: &WriterProcess,
    cache: &ReadCache,
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    if super::tls::wanted(config.get_ssl_mode()) {
        let (client, connection) = config.connect(super::tls::connector()).await?;
        hear(client, connection, notices, writer, cache, first).await
    } else {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        hear(client, connection, notices, writer, cache, first).await
    }
}

/// Drives one connection, passing on what it hears, until it ends.
async fn hear<S, T>(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    notices: &broadcast::Sender<Notice>,
    writer: &WriterProcess,
    cache: &ReadCache,
    first: bool,
) -> Result<(), tokio_postgres::Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (messages, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(message)) => {
                    if messages.send(message).is_err() {
                        return Ok(());
                    }
                }
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CONSENT_CHANNEL}; LISTEN {WORK_CHANNEL}; LISTEN {CACHE_CHANNEL}"))
        .await?;
    // From here every change is heard: what the node reads may be kept.
    cache.hearing(true);
    if !first {
        let _ = notices.send(Notice::Resync);
    }
    while let Some(message) = heard.recv().await {
        let AsyncMessage::Notification(notification) = message else { continue };
        match notification.channel() {
            CONSENT_CHANNEL => match consent_from_json(notification.payload()) {
                Ok(consent) => {
                    let _ = notices.send(Notice::Consent(consent));
                }
                Err(error) => {
                    tracing::warn!(%error, "a consent notice could not be read; reading consent again");
                    let _ = notices.send(Notice::Resync);
                }
            },
            CACHE_CHANNEL => cache.forget_all(),
            WORK_CHANNEL if notification.process_id() != writer.load(Ordering::Relaxed) => {
                let _ = notices.send(Notice::WorkDue { at: notification.payload().to_string() });
            }
            _ => {}
        }
    }
    drop(client);
    driver.await.unwrap_or(Ok(()))
}

/// Stops the cache from keeping anything when the listening thread ends, however it ends.
struct ForgetOnDrop(Arc<ReadCache>);

impl Drop for ForgetOnDrop {
    fn drop(&mut self) {
        self.0.hearing(false);
    }
}
