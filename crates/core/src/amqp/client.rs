//! The broker connection every AMQP part shares: the URI check, a
//! connection that fails fast, the reconnect loop with bounded backoff, and
//! the durable exchange declaration. What is opened on a connection (a
//! publishing channel, a consumer) is the business of its user.
//!
//! TLS: lapin is built without TLS, so [`check_uri`] refuses `amqps://`
//! instead of letting it connect in clear.

use std::time::Duration;

use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

use super::error::{AmqpError, err_text, redact, scrub};

/// Reconnect backoff: first delay, doubled up to the maximum.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Time allowed for the first connection (fail fast at start).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Check a broker URI before connecting: it must parse, and `amqps://` is
/// refused (no TLS in this build; never a silent downgrade). Errors show
/// the URI redacted.
pub fn check_uri(uri: &str) -> Result<(), AmqpError> {
    match uri.parse::<lapin::uri::AMQPUri>() {
        Err(reason) => Err(AmqpError::BadUri {
            uri: redact(uri),
            reason: scrub(&reason, uri),
        }),
        Ok(u) if u.scheme == lapin::uri::AMQPScheme::AMQPS => {
            Err(AmqpError::TlsUnsupported { uri: redact(uri) })
        }
        Ok(_) => Ok(()),
    }
}
/// Open a connection, failing after [`CONNECT_TIMEOUT`]; errors show the
/// URI without its password.
pub async fn connect(uri: &str) -> Result<Connection, AmqpError> {
    check_uri(uri)?;
    match tokio::time::timeout(
        CONNECT_TIMEOUT,
        Connection::connect(uri, ConnectionProperties::default()),
    )
    .await
    {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(AmqpError::Connect {
            uri: redact(uri),
            reason: err_text(&e, uri),
        }),
        Err(_) => Err(AmqpError::Connect {
            uri: redact(uri),
            reason: format!("no answer within {CONNECT_TIMEOUT:?}"),
        }),
    }
}

/// Call `open` until it succeeds, sleeping between failures (each logged)
/// from [`BACKOFF_INITIAL`] doubling up to [`BACKOFF_MAX`]; `None` once
/// `give_up` (asked before every attempt) says so.
pub(crate) async fn reopen<T, Fut>(
    mut open: impl FnMut() -> Fut,
    mut give_up: impl FnMut() -> bool,
) -> Option<T>
where
    Fut: std::future::Future<Output = Result<T, AmqpError>>,
{
    let mut backoff = BACKOFF_INITIAL;
    loop {
        if give_up() {
            return None;
        }
        match open().await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::warn!("{e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
/// Declare a durable exchange of `kind` (an existing one must match).
pub(crate) async fn declare_exchange(
    ch: &Channel,
    exchange: &str,
    kind: ExchangeKind,
) -> lapin::Result<()> {
    ch.exchange_declare(
        exchange.into(),
        kind,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
}
