//! `dnsmonitor alerts`: subscribe to the alert exchange and print what
//! arrives. [`consume_alerts_blocking_ready`] binds a private queue and
//! hands each body over; [`alert_line`] is the terminal printer (readable
//! or JSON, nothing in it can act on a terminal), refusing what is not an
//! alert.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_lite::StreamExt;
use lapin::ExchangeKind;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;

use super::DEFAULT_EXCHANGE;
use super::client::{connect, declare_exchange};
use super::error::{AmqpError, redact};
use crate::escape::{acts_on_terminal, json_for_terminal};

/// Like [`consume_alerts_blocking_ready`] without the readiness callback.
pub fn consume_alerts_blocking(
    uri: &str,
    exchange: &str,
    bindings: &[String],
    stop: Arc<AtomicBool>,
    on_line: impl FnMut(&str),
) -> Result<(), AmqpError> {
    consume_alerts_blocking_ready(uri, exchange, bindings, stop, || {}, on_line)
}

/// Consume alerts: declare the (durable topic) exchange, an exclusive
/// auto-delete server-named queue bound with each pattern in `bindings`
/// (none = `#`), and call `on_line` with each message body; the message is
/// acked after `on_line` returns. `ready` is called once the queue is bound
/// (alerts published from then on are received). Returns when `stop` is set
/// (checked every 100 ms), or with an error if the connection is lost.
pub fn consume_alerts_blocking_ready(
    uri: &str,
    exchange: &str,
    bindings: &[String],
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(),
    mut on_line: impl FnMut(&str),
) -> Result<(), AmqpError> {
    let exchange = if exchange.is_empty() {
        DEFAULT_EXCHANGE
    } else {
        exchange
    };
    let red = redact(uri);
    // On the calling thread: `on_line` need not be `Send`.
    crate::runtime::shared()?.block_on(async {
        let broker = |what: &str, e: lapin::Error| AmqpError::broker(uri, what, &e);
        let conn = connect(uri).await?;
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| broker("open channel", e))?;
        declare_exchange(&ch, exchange, ExchangeKind::Topic)
            .await
            .map_err(|e| broker(&format!("declare exchange {exchange}"), e))?;
        let queue = ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker("declare queue", e))?;
        let qname = queue.name().clone();
        let default = ["#".to_string()];
        let patterns = if bindings.is_empty() {
            &default[..]
        } else {
            bindings
        };
        for p in patterns {
            ch.queue_bind(
                qname.clone(),
                exchange.into(),
                p.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker(&format!("bind {p}"), e))?;
        }
        ch.basic_qos(100, BasicQosOptions::default())
            .await
            .map_err(|e| broker("basic.qos", e))?;
        let mut consumer = ch
            .basic_consume(
                qname,
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| broker("basic.consume", e))?;
        ready();
        while !stop.load(Ordering::Relaxed) {
            let next = match tokio::time::timeout(Duration::from_millis(100), consumer.next()).await
            {
                Err(_) => continue,
                Ok(n) => n,
            };
            let d = match next {
                None => {
                    return Err(AmqpError::Broker {
                        uri: red.clone(),
                        what: "consume".into(),
                        reason: "consumer cancelled by the broker".into(),
                    });
                }
                Some(Err(e)) => return Err(broker("consume", e)),
                Some(Ok(d)) => d,
            };
            on_line(&String::from_utf8_lossy(&d.data));
            d.ack(BasicAckOptions::default())
                .await
                .map_err(|e| broker("ack", e))?;
        }
        let _ = conn.close(200, "stopped".into()).await;
        Ok(())
    })
}

/// Why a message on the alert exchange was not printed as an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotAlert {
    /// A `dnsmonitor.report/1` line (published on the same exchange).
    Report,
    /// Not JSON at all.
    NotJson,
    /// JSON, but not a `dnsmonitor.alert/1` object.
    OtherJson,
}

impl NotAlert {
    pub fn as_str(self) -> &'static str {
        match self {
            NotAlert::Report => "report",
            NotAlert::NotJson => "not JSON",
            NotAlert::OtherJson => "JSON that is not an alert",
        }
    }
}

/// One message body as `dnsmonitor alerts` prints it: a readable line
/// (`human`, for a terminal) or the alert JSON on one line; either way
/// nothing in it can act on a terminal or break the line. Anything that is
/// not a `dnsmonitor.alert/1` object is refused, saying what it is.
pub fn alert_line(body: &str, human: bool) -> Result<String, NotAlert> {
    alert_line_coloured(body, human, false)
}

/// [`alert_line`], the readable form coloured when `colour`.
pub fn alert_line_coloured(body: &str, human: bool, colour: bool) -> Result<String, NotAlert> {
    let v: serde_json::Value = serde_json::from_str(body).map_err(|_| NotAlert::NotJson)?;
    match v.get("schema").and_then(|s| s.as_str()) {
        Some(crate::alert::SCHEMA) => {}
        Some(crate::reports::SCHEMA) => return Err(NotAlert::Report),
        _ => return Err(NotAlert::OtherJson),
    }
    if human {
        return Ok(crate::sinks::human::human_line(&v, colour));
    }
    // As published when already clean (byte for byte), else re-written.
    if !body.contains(['\n', '\r']) && !body.chars().any(acts_on_terminal) {
        return Ok(body.to_string());
    }
    Ok(json_for_terminal(&v.to_string()))
}
