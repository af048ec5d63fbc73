//! Sending a report by e-mail through an SMTP relay (lettre): a short
//! plain-text note for the abuse desk, with the report attached.
//!
//! The relay is a URL: `smtp://host:25` (plain, for a local relay),
//! `smtp://host:587?tls=required` (STARTTLS), `smtps://host:465`, with
//! `user:password@` when the relay wants a login.

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::{Message, SmtpTransport, Transport};

use crate::{Result, SinkError};

/// One mail to send.
pub struct Mail<'a> {
    pub from: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    /// (file name, MIME type, bytes)
    pub attachment: (&'a str, &'a str, Vec<u8>),
}

fn mailbox(what: &str, addr: &str) -> Result<Mailbox> {
    addr.parse::<Mailbox>().map_err(|e| SinkError::Invalid(format!("{what} address {addr:?}: {e}")))
}

/// Sends `m` through the relay at `url`; returns the Message-ID.
pub fn send(url: &str, m: &Mail<'_>) -> Result<String> {
    let (name, mime, bytes) = &m.attachment;
    let ct = ContentType::parse(mime).map_err(|e| SinkError::Invalid(format!("attachment type {mime:?}: {e}")))?;
    let id = format!("<{}.{}@textwatch>", textwatch_store::time::now_ms(), random_hex());
    let email = Message::builder()
        .from(mailbox("from", m.from)?)
        .to(mailbox("to", m.to)?)
        .subject(m.subject)
        .message_id(Some(id.clone()))
        .multipart(
            MultiPart::mixed()
                .singlepart(SinglePart::plain(m.text.to_string()))
                .singlepart(Attachment::new(name.to_string()).body(bytes.clone(), ct)),
        )
        .map_err(|e| SinkError::Invalid(format!("building the mail: {e}")))?;
    let transport = SmtpTransport::from_url(url)
        .map_err(|e| {
            SinkError::Invalid(format!(
                "SMTP relay {url:?}: {e} (use smtp://host:port, smtps://host:465 or smtp://host:587?tls=required)"
            ))
        })?
        .timeout(Some(std::time::Duration::from_secs(30)))
        .build();
    transport.send(&email).map_err(|e| SinkError::Io {
        what: format!("sending the report through {}", redact(url)),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(id)
}

/// The relay URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://…@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 8];
    let _ = getrandom::getrandom(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(super::redact("smtp://me:secret@relay.example:587"), "smtp://…@relay.example:587");
        assert_eq!(super::redact("smtp://relay:25"), "smtp://relay:25");
    }
}
