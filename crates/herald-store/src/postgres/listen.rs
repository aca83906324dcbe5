//! Notices from other nodes: one connection that `LISTEN`s, on a thread of its own.
//!
//! PostgreSQL delivers a `NOTIFY` to every listening connection when the transaction that sent it
//! commits, never before and never for a rollback. A node applies consent changes as it hears them,
//! so an opt-out received by one node stops the sends of every node within a round trip. A lost
//! connection is opened again; what was announced meanwhile was not heard, so the listener then sends
//! [`Notice::Resync`] and the node reads the state again. The same connection hears changes to
//! users, tokens and secrets, which the node's read cache forgets (`cache`); while it is down,
//! nothing is kept.

use super::cache::{CACHE_CHANNEL, ReadCache};
use super::tx::{CONSENT_CHANNEL, consent_from_json};
use std::sync::Arc;
use crate::Notice;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::AsyncMessage;

const RECONNECT_WAIT: Duration = Duration::from_millis(500);

/// Starts listening; the thread ends once every receiver and `stop` are dropped.
pub(super) fn start(
    config: tokio_postgres::Config,
    notices: broadcast::Sender<Notice>,
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
                    lost = listen(&config, &notices, &cache, first) => {
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
    cache: &ReadCache,
    first: bool,
) -> Result<(), tokio_postgres::Error> {
    if super::tls::wanted(config.get_ssl_mode()) {
        let (client, connection) = config.connect(super::tls::connector()).await?;
        hear(client, connection, notices, cache, first).await
    } else {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
        hear(client, connection, notices, cache, first).await
    }
}

/// Drives one connection, passing on what it hears, until it ends.
async fn hear<S, T>(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    notices: &broadcast::Sender<Notice>,
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
    client.batch_execute(&format!("LISTEN {CONSENT_CHANNEL}; LISTEN {CACHE_CHANNEL}")).await?;
    // From here every change is heard: what the node reads may be kept.
    cache.hearing(true);
    if !first {
        let _ = notices.send(Notice::Resync);
    }
    while let Some(message) = heard.recv().await {
        if let AsyncMessage::Notification(notification) = message {
            if notification.channel() == CACHE_CHANNEL {
                cache.forget_all();
                continue;
            }
            if notification.channel() != CONSENT_CHANNEL {
                continue;
            }
            match consent_from_json(notification.payload()) {
                Ok(consent) => {
                    let _ = notices.send(Notice::Consent(consent));
                }
                Err(error) => {
                    tracing::warn!(%error, "a consent notice could not be read; reading consent again");
                    let _ = notices.send(Notice::Resync);
                }
            }
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
