//! The built-in SMTP listener (RFC 5321) for mail sent to the platform as an MX or forwarded to
//! it: `RCPT TO` decides the mailbox and tenant, and unknown recipients are refused right there,
//! so the sending server bounces them instead of us; a message over the size limit is refused at
//! `MAIL FROM` (the `SIZE` parameter) or when `DATA` outgrows it; `250` after `DATA` is said only
//! once the message is stored. With a certificate configured the listener offers STARTTLS
//! (RFC 3207), and can insist on it before any mail.

use std::{sync::Arc, time::Duration};

use helpdesk_proto::email::v1::Source;
use helpdesk_runtime::{ErrorKind, shutdown::Shutdown};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
};

use crate::{Email, store};

/// Connections served at once; more wait for a slot.
const MAX_CONNECTIONS: usize = 512;
/// Recipients of one message.
const MAX_RECIPIENTS: usize = 100;
/// A command line, generously: RFC 5321 allows 512 bytes.
const MAX_COMMAND: usize = 4096;
/// How long a client may stay silent.
const IDLE: Duration = Duration::from_secs(300);

/// The listener's TLS: its certificate, and whether mail is taken only after STARTTLS.
#[derive(Clone)]
pub(crate) struct ListenerTls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) required: bool,
}

/// A connection, before or after STARTTLS.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// Serves SMTP on `listener` until `shutdown`.
pub(crate) async fn serve(email: Arc<Email>, listener: TcpListener, tls: Option<ListenerTls>, shutdown: Shutdown) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.clone().wait() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "smtp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let email = email.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let session = Session::new(email, stream, tls);
            if let Err(error) = async move { session?.run().await }.await {
                tracing::debug!(%peer, %error, "smtp session ended");
            }
            drop(slot);
        });
    }
}

struct Session {
    email: Arc<Email>,
    /// Reads commands and writes replies (BufReader passes writes through).
    stream: BufReader<Box<dyn Connection>>,
    /// The socket under any TLS, for its acknowledgement mode.
    socket: socket2::Socket,
    /// Offered until taken; `None` also once the session is encrypted.
    tls: Option<ListenerTls>,
    encrypted: bool,
    greeted: bool,
    sender: Option<String>,
    /// `(tenant, mailbox)` of each accepted recipient, once each.
    recipients: Vec<(String, String)>,
}

impl Session {
    fn new(email: Arc<Email>, stream: TcpStream, tls: Option<ListenerTls>) -> std::io::Result<Self> {
        let _ = stream.set_nodelay(true);
        let socket = socket2::Socket::from(std::os::fd::AsFd::as_fd(&stream).try_clone_to_owned()?);
        Ok(Self {
            email,
            stream: BufReader::new(Box::new(stream)),
            socket,
            tls,
            encrypted: false,
            greeted: false,
            sender: None,
            recipients: Vec::new(),
        })
    }

    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        let writer = self.stream.get_mut();
        writer.write_all(text.as_bytes()).await?;
        writer.write_all(b"\r\n").await?;
        writer.flush().await
    }

    /// Switches the connection to TLS (RFC 3207): the client starts over with EHLO. Anything it
    /// sent after the command, before the handshake, is refused rather than read as if it had
    /// come encrypted (the STARTTLS command-injection attack).
    async fn start_tls(&mut self) -> std::io::Result<bool> {
        let Some(tls) = self.tls.take() else {
            self.reply("502 5.5.1 command not implemented").await?;
            return Ok(true);
        };
        if !self.stream.buffer().is_empty() {
            self.reply("501 5.5.4 nothing may follow STARTTLS before the handshake").await?;
            return Ok(false);
        }
        self.reply("220 2.0.0 ready to start TLS").await?;
        let plain = std::mem::replace(&mut self.stream, BufReader::new(Box::new(tokio::io::empty())));
        let encrypted = tokio::time::timeout(IDLE, tls.acceptor.accept(plain.into_inner()))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "tls handshake"))??;
        self.stream = BufReader::new(Box::new(encrypted));
        self.encrypted = true;
        self.greeted = false;
        self.reset();
        Ok(true)
    }

    async fn run(mut self) -> std::io::Result<()> {
        let greeting = format!("220 {} ESMTP helpdesk", self.email.hostname);
        self.reply(&greeting).await?;
        let mut line = Vec::new();
        loop {
            line.clear();
            let read =
                tokio::time::timeout(IDLE, (&mut self.stream).take(MAX_COMMAND as u64).read_until(b'\n', &mut line))
                    .await
                    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle"))??;
            if read == 0 {
                return Ok(());
            }
            if !line.ends_with(b"\n") {
                self.reply("500 5.5.2 line too long").await?;
                return Ok(());
            }
            let command = String::from_utf8_lossy(&line).trim_end().to_owned();
            let (verb, argument) = command.split_once(' ').unwrap_or((&command, ""));
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" => {
                    self.reset();
                    self.greeted = true;
                    let max = self.email.max_message_bytes;
                    let host = self.email.hostname.clone();
                    let starttls = if self.tls.is_some() { "250-STARTTLS\r\n" } else { "" };
                    self.reply(&format!("250-{host}\r\n250-SIZE {max}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-PIPELINING\r\n{starttls}250 ENHANCEDSTATUSCODES"))
                        .await?;
                }
                "HELO" => {
                    self.reset();
                    self.greeted = true;
                    let host = self.email.hostname.clone();
                    self.reply(&format!("250 {host}")).await?;
                }
                "STARTTLS" => {
                    if !self.start_tls().await? {
                        return Ok(());
                    }
                }
                "MAIL" => self.mail_from(argument).await?,
                "RCPT" => self.rcpt_to(argument).await?,
                "DATA" => self.data().await?,
                "RSET" => {
                    self.reset();
                    self.reply("250 2.0.0 OK").await?;
                }
                "NOOP" => self.reply("250 2.0.0 OK").await?,
                "VRFY" => self.reply("252 2.1.5 cannot verify, send the message").await?,
                "QUIT" => {
                    self.reply("221 2.0.0 bye").await?;
                    return Ok(());
                }
                _ => self.reply("502 5.5.1 command not implemented").await?,
            }
        }
    }

    /// Clients that keep Nagle's algorithm on (lettre among them) hold the final `.` until the
    /// body is acknowledged, and Linux delays that acknowledgement by 40 ms while the listener has
    /// nothing to say: every message would wait 40 ms. Before each wait for more of the body, the
    /// listener asks the kernel to acknowledge at once (the mode lapses, hence each time).
    fn acknowledge_at_once(&self) {
        #[cfg(target_os = "linux")]
        if let Err(error) = self.socket.set_tcp_quickack(true) {
            tracing::debug!(%error, "TCP_QUICKACK not set");
        }
    }

    fn reset(&mut self) {
        self.sender = None;
        self.recipients.clear();
    }

    async fn mail_from(&mut self, argument: &str) -> std::io::Result<()> {
        if !self.greeted {
            return self.reply("503 5.5.1 say EHLO first").await;
        }
        if self.tls.as_ref().is_some_and(|tls| tls.required) && !self.encrypted {
            return self.reply("530 5.7.0 must issue a STARTTLS command first").await;
        }
        let Some(rest) = strip_keyword(argument, "FROM:") else {
            return self.reply("501 5.5.4 syntax: MAIL FROM:<address>").await;
        };
        let (path, parameters) = path_and_parameters(rest);
        let declared = parameters
            .iter()
            .find_map(|parameter| parameter.strip_prefix("SIZE=").or_else(|| parameter.strip_prefix("size=")))
            .and_then(|size| size.parse::<u64>().ok());
        if declared.is_some_and(|size| size > self.email.max_message_bytes as u64) {
            return self.reply("552 5.3.4 message size exceeds the limit").await;
        }
        self.sender = Some(path.to_lowercase());
        self.recipients.clear();
        self.reply("250 2.1.0 OK").await
    }

    async fn rcpt_to(&mut self, argument: &str) -> std::io::Result<()> {
        if self.sender.is_none() {
            return self.reply("503 5.5.1 MAIL FROM first").await;
        }
        let Some(rest) = strip_keyword(argument, "TO:") else {
            return self.reply("501 5.5.4 syntax: RCPT TO:<address>").await;
        };
        if self.recipients.len() >= MAX_RECIPIENTS {
            return self.reply("452 4.5.3 too many recipients").await;
        }
        let (path, _) = path_and_parameters(rest);
        let address = helpdesk_mail::base_address(path);
        match store::mailbox_for_address(&self.email.db, &address).await {
            Ok(Some(recipient)) => {
                if !self.recipients.contains(&recipient) {
                    self.recipients.push(recipient);
                }
                self.reply("250 2.1.5 OK").await
            }
            Ok(None) => self.reply("550 5.1.1 no such mailbox here").await,
            Err(error) => {
                tracing::warn!(%error, "smtp recipient lookup failed");
                self.reply("451 4.3.0 try again later").await
            }
        }
    }

    async fn data(&mut self) -> std::io::Result<()> {
        if self.recipients.is_empty() {
            return self.reply("503 5.5.1 RCPT TO first").await;
        }
        self.reply("354 end with <CRLF>.<CRLF>").await?;
        let limit = self.email.max_message_bytes as usize;
        let mut message = Vec::new();
        let mut too_large = false;
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.stream.buffer().is_empty() {
                self.acknowledge_at_once();
            }
            let read = tokio::time::timeout(IDLE, self.stream.read_until(b'\n', &mut line))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle in DATA"))??;
            if read == 0 {
                // The client left mid-message: nothing was accepted, so nothing is lost.
                return Ok(());
            }
            if line == b".\r\n" || line == b".\n" {
                break;
            }
            // Dot-stuffing: a leading dot was doubled by the client.
            let content = if line.starts_with(b"..") { &line[1..] } else { &line[..] };
            if message.len() + content.len() > limit {
                too_large = true;
            } else {
                message.extend_from_slice(content);
            }
        }
        let recipients = std::mem::take(&mut self.recipients);
        let sender = self.sender.take().unwrap_or_default();
        if too_large {
            return self.reply("552 5.3.4 message size exceeds the limit").await;
        }
        // As at final delivery (RFC 5321 4.4): the reverse path, `<>` for notifications.
        let mut stored_message = format!("Return-Path: <{sender}>\r\n").into_bytes();
        stored_message.extend_from_slice(&message);
        let mut stored = Vec::new();
        for (tenant, mailbox) in &recipients {
            match self.email.accept(tenant, mailbox, &stored_message, Source::Smtp).await {
                Ok(accepted) => stored.push(accepted.mail_id),
                Err(error) if error.kind == ErrorKind::FailedPrecondition => {
                    return self.reply("550 5.2.1 the mailbox is not taking mail").await;
                }
                Err(error) if error.kind == ErrorKind::InvalidArgument => {
                    return self.reply("552 5.3.4 message size exceeds the mailbox's limit").await;
                }
                Err(error) => {
                    tracing::warn!(%error, tenant, mailbox, "smtp message not stored");
                    return self.reply("451 4.3.0 not stored, try again later").await;
                }
            }
        }
        self.reply(&format!("250 2.0.0 OK queued as {}", stored.join(","))).await
    }
}

/// The rest of `argument` after `keyword` (`FROM:`, `TO:`), case-insensitively.
fn strip_keyword<'a>(argument: &'a str, keyword: &str) -> Option<&'a str> {
    let head = argument.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword).then(|| argument[keyword.len()..].trim_start())
}

/// `<path> PARAM=value …` into the address inside the brackets and the parameters.
fn path_and_parameters(rest: &str) -> (&str, Vec<&str>) {
    let rest = rest.trim();
    match rest.strip_prefix('<').and_then(|inner| inner.split_once('>')) {
        Some((path, parameters)) => (path.trim(), parameters.split_whitespace().collect()),
        None => {
            let mut words = rest.split_whitespace();
            (words.next().unwrap_or_default(), words.collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_parameters_are_read_as_clients_write_them() {
        assert_eq!(
            path_and_parameters("<kim@example.com> SIZE=1000 BODY=8BITMIME"),
            ("kim@example.com", vec!["SIZE=1000", "BODY=8BITMIME"])
        );
        assert_eq!(path_and_parameters("<>"), ("", vec![]));
        assert_eq!(path_and_parameters("kim@example.com"), ("kim@example.com", vec![]));
        assert_eq!(strip_keyword("from:<a@b.c>", "FROM:"), Some("<a@b.c>"));
        assert_eq!(strip_keyword("TO <a@b.c>", "TO:"), None);
    }
}
