//! What goes wrong talking to a broker, said without the password.
//!
//! Every URI in a message or a log goes through [`redact`] (password
//! replaced by `***`, and everything that could be part of one when the URI
//! does not parse), and lapin's own error texts through [`err_text`], which
//! removes the URI and the secret. Nothing here connects.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The broker could not be reached or refused the connection.
    #[error("cannot connect to AMQP broker {uri}: {reason}")]
    Connect { uri: String, reason: String },
    /// Connected, but declaring/binding/consuming failed.
    #[error("AMQP error on {uri}: {what}: {reason}")]
    Broker {
        uri: String,
        what: String,
        reason: String,
    },
    #[error("cannot start the AMQP runtime: {0}")]
    Runtime(#[from] io::Error),
    /// The URI does not parse (shown redacted).
    #[error("invalid AMQP URI {uri}: {reason}")]
    BadUri { uri: String, reason: String },
    /// `amqps://`: this build has no TLS, and never downgrades to clear text.
    #[error(
        "AMQP URI {uri}: amqps:// (TLS) is not supported by this build; refusing rather than connecting without TLS (use amqp:// on a trusted network, or a TLS tunnel such as stunnel to the broker)"
    )]
    TlsUnsupported { uri: String },
}

impl AmqpError {
    /// `what` failed on the broker at `uri` (shown without its password).
    pub(crate) fn broker(uri: &str, what: impl Into<String>, e: &lapin::Error) -> AmqpError {
        AmqpError::Broker {
            uri: redact(uri),
            what: what.into(),
            reason: err_text(e, uri),
        }
    }
}

/// The URI with its password (if any) replaced by `***`. When the URI is
/// ambiguous (a `/`, `?` or `#` in the password, no `@`), everything that
/// could be a secret is hidden: all of the userinfo up to the last `@`, or
/// the whole authority and path when there is no `@` and the authority is
/// not a plain `host[:port]`.
pub fn redact(uri: &str) -> String {
    let (shown, _) = split_secret(uri);
    shown
}

/// (`uri` as shown, the part of it hidden) — see [`redact`].
fn split_secret(uri: &str) -> (String, Option<&str>) {
    let Some(scheme_end) = uri.find("://") else {
        // Not even a scheme: nothing of it is safe to show.
        return ("***".into(), Some(uri).filter(|u| !u.is_empty()));
    };
    let auth_start = scheme_end + 3;
    let rest = &uri[auth_start..];
    let delimiters = ['/', '?', '#'];
    match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let host = &rest[at..];
            match userinfo.split_once(':') {
                // The usual `user:password@`: the user name is shown.
                Some((user, password)) if !user.contains(delimiters) => (
                    format!("{}{user}:***{host}", &uri[..auth_start]),
                    Some(password).filter(|p| !p.is_empty()),
                ),
                // No password at all.
                None if !userinfo.contains(delimiters) => (uri.to_string(), None),
                _ => (
                    format!("{}***{host}", &uri[..auth_start]),
                    Some(userinfo).filter(|u| !u.is_empty()),
                ),
            }
        }
        None => {
            let authority = &rest[..rest.find(delimiters).unwrap_or(rest.len())];
            let plain_host = match authority.rsplit_once(':') {
                Some((host, port)) => {
                    !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit())
                }
                None => true,
            };
            if plain_host || authority.starts_with('[') {
                (uri.to_string(), None)
            } else {
                (
                    format!("{}***", &uri[..auth_start]),
                    Some(rest).filter(|r| !r.is_empty()),
                )
            }
        }
    }
}

/// A lapin error's text without the URI or its secret in it.
pub(crate) fn err_text(e: &lapin::Error, uri: &str) -> String {
    scrub(&e.to_string(), uri)
}

/// `text` with `uri` shown redacted and its secret replaced by `***`.
pub(super) fn scrub(text: &str, uri: &str) -> String {
    let (shown, secret) = split_secret(uri);
    let mut text = if uri.is_empty() {
        text.to_string()
    } else {
        text.replace(uri, &shown)
    };
    if let Some(secret) = secret {
        text = text.replace(secret, "***");
    }
    text
}
