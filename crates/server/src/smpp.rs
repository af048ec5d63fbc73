//! The SMPP 3.4 filtering proxy behind `textwatch smpp`: an SMSC to the
//! ESMEs that bind to it, an ESME to the upstream SMSC.
//!
//! Each ESME session gets its own upstream session, bound the same way
//! (transmitter, receiver or transceiver) with the upstream credentials.
//! Every `submit_sm` and `data_sm` gets a verdict inline, on the whole
//! text (concatenated parts are held until all have arrived, or until
//! `concat_timeout`): allowed ones are forwarded octet for octet (only the
//! sequence number changes) and the upstream's response is relayed;
//! refused ones are answered here with a vendor-range status. Upstream
//! `deliver_sm` (receipts and texts from phones) is relayed back; a text
//! that is an opt-out keyword changes opt-out state first, and is
//! acknowledged upstream only once that is stored.
//!
//! PDU bodies are decoded with `rusmpp`; framing, text and concatenation
//! come from `textwatch-smpp`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use textwatch_store::time::now_ms;

use bytes::{Bytes, BytesMut};
use textwatch_engine::Message;
use textwatch_smpp::concat::{Added, Reassembler};
use textwatch_smpp::frame::{self, id, Header};
use textwatch_smpp::status;
use textwatch_smpp::text::DefaultAlphabet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::state::Shared;

/// How `textwatch smpp` runs.
#[derive(Clone, Debug)]
pub struct SmppConfig {
    /// Where ESMEs bind.
    pub listen: SocketAddr,
    /// The upstream SMSC, HOST:PORT.
    pub upstream: String,
    /// The system_id and password textwatch binds upstream with.
    pub upstream_system_id: String,
    pub upstream_password: String,
    /// What `data_coding` 0 means.
    pub default_alphabet: DefaultAlphabet,
    /// How long parts of a concatenated message are held for the rest.
    pub concat_timeout: Duration,
    /// How often an idle upstream session is probed with enquire_link.
    pub enquire_link: Duration,
}

/// The stored form of an SMPP bind's credentials (see
/// `textwatch token create --smpp`): a token whose secret is the system
/// id and password together.
pub fn credential_hash(system_id: &str, password: &str) -> String {
    super::token_hash(&format!("smpp:{system_id}:{password}"))
}

/// The bind kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Transmitter,
    Receiver,
    Transceiver,
}

impl Kind {
    fn of(command: u32) -> Option<Kind> {
        match command {
            id::BIND_TRANSMITTER => Some(Kind::Transmitter),
            id::BIND_RECEIVER => Some(Kind::Receiver),
            id::BIND_TRANSCEIVER => Some(Kind::Transceiver),
            _ => None,
        }
    }
    fn command(self) -> u32 {
        match self {
            Kind::Transmitter => id::BIND_TRANSMITTER,
            Kind::Receiver => id::BIND_RECEIVER,
            Kind::Transceiver => id::BIND_TRANSCEIVER,
        }
    }
    fn transmits(self) -> bool {
        self != Kind::Receiver
    }
}

static SESSIONS: AtomicU64 = AtomicU64::new(1);

/// Accepts ESMEs until the listener is dropped.
pub(super) async fn serve(listener: TcpListener, st: Shared, cfg: Arc<SmppConfig>) {
    let store = spawn_store(st.clone());
    // At most 2,000 texts held for their missing parts, over all binds.
    let parts: SharedParts = Arc::new(std::sync::Mutex::new(Reassembler::new(cfg.concat_timeout, 2_000)));
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an SMPP connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let (st, cfg, store, parts) = (st.clone(), cfg.clone(), store.clone(), parts.clone());
        tokio::spawn(async move {
            let n = SESSIONS.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(session = n, %peer, "SMPP connection");
            if let Err(e) = session(n, sock, st, cfg, store, parts).await {
                tracing::info!(session = n, %peer, reason = %e, "SMPP session ended");
            }
        });
    }
}

/// Messages the proxy let through go to the store in batches (the verdict
/// does not wait for a disk sync; the upstream's acceptance is what the
/// ESME is told).
fn spawn_store(st: Shared) -> mpsc::Sender<Message> {
    let (tx, mut rx) = mpsc::channel::<Message>(20_000);
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![(first, "smpp:submit_sm".to_string())];
            let until = tokio::time::Instant::now() + Duration::from_millis(50);
            while batch.len() < 2_000 {
                match tokio::time::timeout_at(until, rx.recv()).await {
                    Ok(Some(m)) => batch.push((m, "smpp:submit_sm".to_string())),
                    _ => break,
                }
            }
            let n = batch.len();
            // The queue may be full for a moment: try again, then give up
            // on this batch (the texts were delivered; only their copy
            // here is lost, and said so).
            let mut left = 5;
            loop {
                match super::api::submit(&st, batch.clone()).await {
                    Ok(_) => break,
                    Err(e) if left > 0 => {
                        left -= 1;
                        tracing::debug!(error = ?e, "storing SMPP traffic; retrying");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(e) => {
                        tracing::error!(error = ?e, messages = n, "SMPP traffic not stored");
                        break;
                    }
                }
            }
        }
    });
    tx
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("the ESME closed the connection")]
    Closed,
}

/// Reads PDUs off a socket into a channel, starting with what was read
/// already (`buf`); a framing error ends it.
fn spawn_reader(mut rd: OwnedReadHalf, mut buf: BytesMut, tx: mpsc::Sender<Result<Bytes, String>>) {
    tokio::spawn(async move {
        loop {
            loop {
                match frame::next(&mut buf) {
                    Ok(Some(p)) => {
                        if tx.send(Ok(p)).await.is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string())).await;
                        return;
                    }
                }
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
}

/// Writes PDUs from a channel to a socket.
fn spawn_writer(mut wr: OwnedWriteHalf) -> mpsc::Sender<Bytes> {
    let (tx, mut rx) = mpsc::channel::<Bytes>(1024);
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                return;
            }
            // Write what else is ready in one go.
            while let Ok(b) = rx.try_recv() {
                if wr.write_all(&b).await.is_err() {
                    return;
                }
            }
        }
        let _ = wr.shutdown().await;
    });
    tx
}

/// A C-octet string field at `at` of a PDU body.
fn c_string(b: &[u8], at: &mut usize) -> Option<String> {
    let rest = b.get(*at..)?;
    let end = rest.iter().position(|&x| x == 0)?;
    *at += end + 1;
    Some(String::from_utf8_lossy(&rest[..end]).into_owned())
}

/// A bind PDU's body: system_id, password, system_type, interface_version,
/// addr_ton, addr_npi, address_range.
fn bind_pdu(kind: Kind, seq: u32, system_id: &str, password: &str) -> Bytes {
    let mut body = Vec::with_capacity(40);
    for s in [system_id, password, ""] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    body.extend_from_slice(&[0x34, 0, 0, 0]);
    let mut b = BytesMut::with_capacity(16 + body.len());
    b.extend_from_slice(&((16 + body.len()) as u32).to_be_bytes());
    b.extend_from_slice(&kind.command().to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&body);
    b.freeze()
}

/// A submit_sm of a reply (HELP) from `from` to `to`, in UCS-2 when it is
/// not plain ASCII.
fn submit_pdu(seq: u32, from: &str, to: &str, text: &str) -> Bytes {
    let (dc, sm): (u8, Vec<u8>) = if text.is_ascii() {
        (0x01, text.as_bytes().to_vec())
    } else {
        (0x08, text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect())
    };
    let sm = &sm[..sm.len().min(254)];
    let mut body = Vec::with_capacity(64 + sm.len());
    body.push(0); // service_type
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(from.as_bytes());
    body.push(0);
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(to.as_bytes());
    body.push(0);
    body.extend_from_slice(&[0, 0, 0]); // esm_class, protocol_id, priority
    body.extend_from_slice(&[0, 0]); // schedule, validity
    body.extend_from_slice(&[0, 0, dc, 0, sm.len() as u8]);
    body.extend_from_slice(sm);
    let mut b = BytesMut::with_capacity(16 + body.len());
    b.extend_from_slice(&((16 + body.len()) as u32).to_be_bytes());
    b.extend_from_slice(&id::SUBMIT_SM.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&body);
    b.freeze()
}

/// What an upstream response answers.
enum Waiting {
    /// An ESME request: the session it came on (its writer) and its
    /// sequence number there.
    Esme(mpsc::Sender<Bytes>, u32),
    /// Textwatch's own (enquire_link, HELP replies, unbind).
    Own,
}

/// One held part of a concatenated submit: its ESME sequence number, the
/// PDU, and the writer of the session it came on (an ESME may spread the
/// parts of one text over several binds; each part is answered on its
/// own).
#[derive(Clone)]
pub(crate) struct HeldPart {
    seq: u32,
    pdu: Bytes,
    to_esme: mpsc::Sender<Bytes>,
}

/// Parts held for every session, keyed by the binds' system_id, so that a
/// text split over two binds is still judged whole.
pub(crate) type SharedParts = Arc<std::sync::Mutex<Reassembler<HeldPart>>>;

struct Session {
    n: u64,
    st: Shared,
    cfg: Arc<SmppConfig>,
    store: mpsc::Sender<Message>,
    kind: Kind,
    system_id: String,
    to_esme: mpsc::Sender<Bytes>,
    to_up: mpsc::Sender<Bytes>,
    /// Upstream sequence -> what it answers.
    up_waiting: HashMap<u32, Waiting>,
    /// ESME-side sequence of a relayed deliver_sm -> the upstream's.
    esme_waiting: HashMap<u32, u32>,
    up_seq: u32,
    esme_seq: u32,
    parts: SharedParts,
    last_up: Instant,
}

impl Session {
    fn next_up(&mut self) -> u32 {
        self.up_seq = self.up_seq % 0x7FFF_FFFF + 1;
        self.up_seq
    }
    fn next_esme(&mut self) -> u32 {
        self.esme_seq = self.esme_seq % 0x7FFF_FFFF + 1;
        self.esme_seq
    }

    async fn esme(&self, b: Bytes) -> Result<(), SessionError> {
        self.to_esme.send(b).await.map_err(|_| SessionError::Closed)
    }

    /// Answers a held part on the session it came on (gone sessions are
    /// skipped: their ESME will time the request out).
    async fn answer(part: &HeldPart, command: u32, code: u32) {
        let _ = part.to_esme.send(frame::with_c_string(id::resp(command), code, part.seq, "")).await;
    }

    async fn up(&mut self, b: Bytes, waiting: Waiting) -> Result<(), SessionError> {
        if let Some(h) = Header::read(&b) {
            if !h.is_response() {
                self.up_waiting.insert(h.sequence, waiting);
            }
        }
        self.to_up.send(b).await.map_err(|_| SessionError::Protocol("the upstream SMSC closed the connection".into()))
    }

    async fn nack(&self, seq: u32, code: u32) -> Result<(), SessionError> {
        self.st.metrics.smpp_nacks.fetch_add(1, Ordering::Relaxed);
        self.esme(frame::bare(id::GENERIC_NACK, code, seq)).await
    }

    /// A PDU from the ESME.
    async fn on_esme_pdu(&mut self, pdu: Bytes) -> Result<bool, SessionError> {
        let Some(h) = Header::read(&pdu) else { return Ok(true) };
        if h.is_response() {
            // The ESME answers a deliver_sm we relayed.
            if let Some(up) = self.esme_waiting.remove(&h.sequence) {
                self.to_up
                    .send(frame::with_sequence(&pdu, up))
                    .await
                    .map_err(|_| SessionError::Protocol("the upstream SMSC closed the connection".into()))?;
            }
            return Ok(true);
        }
        let cmd = match frame::decode(&pdu) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(session = self.n, command = h.id, error = %e, "malformed PDU from the ESME");
                // 0x02: ESME_RINVCMDLEN, the body does not hold the fields
                // its command_length promises.
                self.nack(h.sequence, 0x02).await?;
                return Ok(true);
            }
        };
        match h.id {
            id::ENQUIRE_LINK => self.esme(frame::bare(id::resp(id::ENQUIRE_LINK), 0, h.sequence)).await?,
            id::UNBIND => {
                let s = self.next_up();
                let _ = self.up(frame::bare(id::UNBIND, 0, s), Waiting::Own).await;
                self.esme(frame::bare(id::resp(id::UNBIND), 0, h.sequence)).await?;
                return Ok(false);
            }
            id::BIND_RECEIVER | id::BIND_TRANSMITTER | id::BIND_TRANSCEIVER => {
                self.esme(frame::with_c_string(id::resp(h.id), status::ALREADY_BOUND, h.sequence, "textwatch")).await?
            }
            id::SUBMIT_SM | id::DATA_SM if !self.kind.transmits() => {
                let resp = id::resp(h.id);
                self.esme(frame::with_c_string(resp, status::INVALID_BIND_STATUS, h.sequence, "")).await?
            }
            id::SUBMIT_SM | id::DATA_SM => {
                let Some(pdu_body) = cmd.pdu() else { return Ok(true) };
                let Some(sm) = textwatch_smpp::sm::of(pdu_body, self.cfg.default_alphabet) else { return Ok(true) };
                match sm.part {
                    Some(part) => {
                        let key = (self.system_id.clone(), sm.source.clone(), sm.destination.clone(), part.reference);
                        let held = HeldPart { seq: h.sequence, pdu: pdu.clone(), to_esme: self.to_esme.clone() };
                        let added =
                            self.parts.lock().unwrap_or_else(|e| e.into_inner()).add(key, part, sm.text.clone(), held);
                        match added {
                            Ok(Added::Waiting { displaced }) => {
                                // A resent or restarted part: the copy it
                                // replaced is answered, not forgotten.
                                for p in &displaced {
                                    Self::answer(p, h.id, status::SUBMIT_FAILED).await;
                                }
                            }
                            Ok(Added::Complete { text, parts, displaced }) => {
                                for p in &displaced {
                                    Self::answer(p, h.id, status::SUBMIT_FAILED).await;
                                }
                                self.judge(h.id, &sm, text, parts).await?
                            }
                            Err(refused) => {
                                // Too many messages held: throttle this one.
                                for p in &refused {
                                    Self::answer(p, h.id, status::THROTTLED).await;
                                }
                            }
                        }
                    }
                    None => {
                        let text = sm.text.clone();
                        let held = HeldPart { seq: h.sequence, pdu: pdu.clone(), to_esme: self.to_esme.clone() };
                        self.judge(h.id, &sm, text, vec![held]).await?
                    }
                }
            }
            // Not filtered here, so not let through: each could carry a
            // text past the verdict (submit_multi, replace_sm) or is not
            // an ESME's to send.
            id::SUBMIT_MULTI | id::REPLACE_SM | id::DELIVER_SM | id::OUTBIND | id::ALERT_NOTIFICATION => {
                self.nack(h.sequence, status::INVALID_COMMAND).await?
            }
            id::QUERY_SM | id::CANCEL_SM => {
                let s = self.next_up();
                self.up(frame::with_sequence(&pdu, s), Waiting::Esme(self.to_esme.clone(), h.sequence)).await?
            }
            _ => self.nack(h.sequence, status::INVALID_COMMAND).await?,
        }
        Ok(true)
    }

    /// The verdict on a whole text, then each of its PDUs forwarded or
    /// refused.
    async fn judge(
        &mut self,
        command: u32,
        sm: &textwatch_smpp::sm::ShortMessage,
        text: String,
        parts: Vec<HeldPart>,
    ) -> Result<(), SessionError> {
        let started = Instant::now();
        let msg = Message {
            id: None,
            ts_ms: now_ms(),
            from: sm.source.clone(),
            to: Some(sm.destination.clone()),
            body: text,
            source: Some("smpp".into()),
            meta: None,
        };
        tracing::debug!(session = self.n, from = %msg.from, to = ?msg.to, body = %msg.body, "judging");
        let verdict = super::api::verdict(&self.st, msg.clone());
        let refusal = match &verdict {
            Ok(v) if v.rule == super::optout::RULE => Some(status::TW_OPTED_OUT),
            Ok(v) if v.action == "block" => Some(status::TW_POLICY_BLOCK),
            Ok(_) => None,
            Err(e) => {
                tracing::error!(session = self.n, error = ?e, "no verdict; refusing");
                Some(status::SYSTEM_ERROR)
            }
        };
        self.st.metrics.histogram("smpp submit_sm").observe(started.elapsed().as_secs_f64());
        match refusal {
            Some(code) => {
                if let Ok(v) = &verdict {
                    tracing::info!(
                        session = self.n, system_id = %self.system_id, rule = %v.rule, status = status::name(code),
                        campaign = ?v.campaign, "submit refused"
                    );
                }
                for p in &parts {
                    self.st.metrics.smpp_refused.fetch_add(1, Ordering::Relaxed);
                    Self::answer(p, command, code).await;
                }
            }
            None => {
                // Every part goes upstream on this session; each answer
                // goes back to the session its part came on.
                for p in parts {
                    self.st.metrics.smpp_forwarded.fetch_add(1, Ordering::Relaxed);
                    let s = self.next_up();
                    self.up(frame::with_sequence(&p.pdu, s), Waiting::Esme(p.to_esme, p.seq)).await?;
                }
                if self.store.try_send(msg).is_err() {
                    tracing::warn!(session = self.n, "SMPP store queue full: a forwarded text is not kept");
                }
            }
        }
        Ok(())
    }

    /// A PDU from the upstream SMSC.
    async fn on_upstream_pdu(&mut self, pdu: Bytes) -> Result<bool, SessionError> {
        self.last_up = Instant::now();
        let Some(h) = Header::read(&pdu) else { return Ok(true) };
        if h.is_response() {
            match self.up_waiting.remove(&h.sequence) {
                Some(Waiting::Esme(to, seq)) => {
                    let _ = to.send(frame::with_sequence(&pdu, seq)).await;
                }
                Some(Waiting::Own) | None => {}
            }
            return Ok(true);
        }
        match h.id {
            id::ENQUIRE_LINK => {
                self.to_up
                    .send(frame::bare(id::resp(id::ENQUIRE_LINK), 0, h.sequence))
                    .await
                    .map_err(|_| SessionError::Protocol("the upstream SMSC closed the connection".into()))?;
            }
            id::UNBIND => {
                let _ = self.to_up.send(frame::bare(id::resp(id::UNBIND), 0, h.sequence)).await;
                let s = self.next_esme();
                let _ = self.esme(frame::bare(id::UNBIND, 0, s)).await;
                return Ok(false);
            }
            id::DELIVER_SM => {
                let sm = frame::decode(&pdu)
                    .ok()
                    .and_then(|c| c.pdu().and_then(|p| textwatch_smpp::sm::of(p, self.cfg.default_alphabet)));
                if let Some(sm) = sm.filter(|s| !s.is_receipt() && s.part.is_none()) {
                    let handled = super::optout::handle_inbound(
                        &self.st,
                        &sm.source,
                        &sm.destination,
                        &sm.text,
                        now_ms(),
                        "smpp:deliver_sm",
                    )
                    .await;
                    match handled {
                        Ok(Some(h)) => {
                            if let (Some(reply), true) = (h.reply, self.kind.transmits()) {
                                let s = self.next_up();
                                let p = submit_pdu(s, &sm.destination, &sm.source, &reply);
                                self.up(p, Waiting::Own).await?;
                            }
                        }
                        Ok(None) => {}
                        // Not a keyword the gateway can act on (no address):
                        // relayed like any text.
                        Err(e) if e.status() == axum::http::StatusCode::BAD_REQUEST => {}
                        Err(e) => {
                            // Not stored: ask the SMSC to deliver it again
                            // (ESME_RX_T_APPN, a temporary error).
                            tracing::warn!(session = self.n, error = ?e, "an opt-out was not stored; asking for redelivery");
                            let r = frame::with_c_string(id::resp(id::DELIVER_SM), 0x64, h.sequence, "");
                            let _ = self.to_up.send(r).await;
                            return Ok(true);
                        }
                    }
                }
                self.st.metrics.smpp_delivered.fetch_add(1, Ordering::Relaxed);
                let s = self.next_esme();
                self.esme_waiting.insert(s, h.sequence);
                self.esme(frame::with_sequence(&pdu, s)).await?;
            }
            id::DATA_SM | id::ALERT_NOTIFICATION => {
                let s = self.next_esme();
                if h.id == id::DATA_SM {
                    self.esme_waiting.insert(s, h.sequence);
                }
                self.esme(frame::with_sequence(&pdu, s)).await?;
            }
            _ => {
                let _ = self.to_up.send(frame::bare(id::GENERIC_NACK, status::INVALID_COMMAND, h.sequence)).await;
            }
        }
        Ok(true)
    }

    /// Every tick: parts held too long are judged as they are; an idle
    /// upstream is probed.
    async fn tick(&mut self) -> Result<(), SessionError> {
        // Whichever session ticks first judges what has waited too long;
        // each part is answered on its own session.
        let expired: Vec<_> = {
            let mut r = self.parts.lock().unwrap_or_else(|e| e.into_inner());
            r.expired(Instant::now())
        };
        for ((_, source, destination, _), text, parts) in expired {
            let Some(first) = parts.first() else { continue };
            let command = Header::read(&first.pdu).map_or(id::SUBMIT_SM, |h| h.id);
            let sm = textwatch_smpp::sm::ShortMessage {
                source,
                destination,
                esm_class: 0,
                data_coding: 0,
                part: None,
                text: String::new(),
            };
            self.judge(command, &sm, text, parts).await?;
        }
        if self.last_up.elapsed() >= self.cfg.enquire_link {
            self.last_up = Instant::now();
            let s = self.next_up();
            self.up(frame::bare(id::ENQUIRE_LINK, 0, s), Waiting::Own).await?;
        }
        Ok(())
    }
}

/// Reads one PDU (for the bind, before the session's tasks start).
async fn read_one(sock: &mut TcpStream, buf: &mut BytesMut) -> Result<Bytes, SessionError> {
    loop {
        match frame::next(buf) {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => {}
            Err(e) => return Err(SessionError::Protocol(e.to_string())),
        }
        if sock.read_buf(buf).await? == 0 {
            return Err(SessionError::Closed);
        }
    }
}

/// Authenticates a bind: its system_id and password must be an SMPP
/// credential with the `check` and `ingest` scopes.
fn authenticate(st: &Shared, system_id: &str, password: &str) -> Result<(), u32> {
    let hash = credential_hash(system_id, password);
    let found = st.read(|s| Ok(s.token_scopes(&hash)?)).map_err(|_| status::SYSTEM_ERROR)?;
    let Some((_, scopes)) = found else { return Err(status::INVALID_PASSWORD) };
    let has = |x: &str| scopes.split(',').any(|s| s == x || s == "admin");
    if has("check") && has("ingest") {
        Ok(())
    } else {
        Err(status::TW_NOT_ALLOWED)
    }
}

async fn session(
    n: u64,
    mut sock: TcpStream,
    st: Shared,
    cfg: Arc<SmppConfig>,
    store: mpsc::Sender<Message>,
    parts: SharedParts,
) -> Result<(), SessionError> {
    let mut buf = BytesMut::with_capacity(4096);
    // Until bound: enquire_link is answered, a bind is checked, anything
    // else is refused (ESME_RINVBNDSTS).
    let (kind, system_id, bind_seq) = loop {
        let pdu = tokio::time::timeout(Duration::from_secs(60), read_one(&mut sock, &mut buf))
            .await
            .map_err(|_| SessionError::Protocol("no bind within 60 s".into()))??;
        let Some(h) = Header::read(&pdu) else { continue };
        if h.id == id::ENQUIRE_LINK {
            sock.write_all(&frame::bare(id::resp(id::ENQUIRE_LINK), 0, h.sequence)).await?;
            continue;
        }
        let Some(kind) = Kind::of(h.id) else {
            if !h.is_response() {
                let code = if frame::decode(&pdu).is_ok() { status::INVALID_BIND_STATUS } else { 0x02 };
                sock.write_all(&frame::bare(id::GENERIC_NACK, code, h.sequence)).await?;
            }
            continue;
        };
        let body = &pdu[frame::HEADER..];
        let mut at = 0;
        let (Some(system_id), Some(password)) = (c_string(body, &mut at), c_string(body, &mut at)) else {
            sock.write_all(&frame::bare(id::GENERIC_NACK, 0x02, h.sequence)).await?;
            continue;
        };
        let st2 = st.clone();
        let (sid, pw) = (system_id.clone(), password.clone());
        let auth = tokio::task::spawn_blocking(move || authenticate(&st2, &sid, &pw))
            .await
            .unwrap_or(Err(status::SYSTEM_ERROR));
        if let Err(code) = auth {
            tracing::info!(session = n, system_id = %system_id, status = status::name(code), "bind refused");
            sock.write_all(&frame::with_c_string(id::resp(h.id), code, h.sequence, "textwatch")).await?;
            continue;
        }
        break (kind, system_id, h.sequence);
    };
    // The upstream session, bound the same way.
    let up = match tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(&cfg.upstream)).await {
        Ok(Ok(s)) => s,
        _ => {
            tracing::warn!(session = n, upstream = %cfg.upstream, "upstream SMSC unreachable; bind refused");
            sock.write_all(&frame::with_c_string(id::resp(kind.command()), status::BIND_FAILED, bind_seq, "textwatch"))
                .await?;
            return Err(SessionError::Protocol(format!("upstream {} unreachable", cfg.upstream)));
        }
    };
    let _ = up.set_nodelay(true);
    let mut up = up;
    up.write_all(&bind_pdu(kind, 1, &cfg.upstream_system_id, &cfg.upstream_password)).await?;
    let mut upbuf = BytesMut::with_capacity(4096);
    // What the SMSC sends before answering the bind (a queued deliver_sm):
    // handled once the session runs.
    let mut early = Vec::new();
    let up_status = loop {
        let p = tokio::time::timeout(Duration::from_secs(10), read_one(&mut up, &mut upbuf))
            .await
            .map_err(|_| SessionError::Protocol("the upstream SMSC did not answer the bind".into()))?
            .map_err(|e| SessionError::Protocol(format!("upstream bind: {e}")))?;
        match Header::read(&p) {
            Some(h) if h.id == id::resp(kind.command()) => break h.status,
            Some(_) => early.push(p),
            None => {}
        }
    };
    if up_status != status::OK {
        tracing::warn!(session = n, status = up_status, "the upstream SMSC refused textwatch's bind");
        sock.write_all(&frame::with_c_string(id::resp(kind.command()), status::BIND_FAILED, bind_seq, "textwatch"))
            .await?;
        return Err(SessionError::Protocol(format!("upstream refused the bind with status {up_status:#x}")));
    }
    sock.write_all(&frame::with_c_string(id::resp(kind.command()), status::OK, bind_seq, "textwatch")).await?;
    tracing::info!(session = n, system_id = %system_id, kind = ?kind, "SMPP bound");
    st.metrics.smpp_sessions.fetch_add(1, Ordering::Relaxed);

    let (erd, ewr) = sock.into_split();
    let (urd, uwr) = up.into_split();
    let (etx, mut erx) = mpsc::channel(1024);
    let (utx, mut urx) = mpsc::channel(1024);
    // What was read past the bind, whole PDUs or not, is where each reader
    // starts.
    spawn_reader(erd, buf.split(), etx);
    spawn_reader(urd, upbuf.split(), utx);
    let mut s = Session {
        n,
        st: st.clone(),
        cfg: cfg.clone(),
        store,
        kind,
        system_id,
        to_esme: spawn_writer(ewr),
        to_up: spawn_writer(uwr),
        up_waiting: HashMap::new(),
        esme_waiting: HashMap::new(),
        up_seq: 1,
        esme_seq: 0,
        parts,
        last_up: Instant::now(),
    };
    let result = run_session(&mut s, &mut erx, &mut urx, early).await;
    st.metrics.smpp_sessions.fetch_sub(1, Ordering::Relaxed);
    result
}

async fn run_session(
    s: &mut Session,
    erx: &mut mpsc::Receiver<Result<Bytes, String>>,
    urx: &mut mpsc::Receiver<Result<Bytes, String>>,
    early: Vec<Bytes>,
) -> Result<(), SessionError> {
    for p in early {
        if !s.on_upstream_pdu(p).await? {
            return Ok(());
        }
    }
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            e = erx.recv() => match e {
                Some(Ok(p)) => if !s.on_esme_pdu(p).await? { return Ok(()) },
                Some(Err(e)) => {
                    // Framing lost: say so and end the session.
                    let _ = s.nack(0, 0x02).await;
                    return Err(SessionError::Protocol(e));
                }
                None => {
                    let seq = s.next_up();
                    let _ = s.up(frame::bare(id::UNBIND, 0, seq), Waiting::Own).await;
                    return Err(SessionError::Closed);
                }
            },
            u = urx.recv() => match u {
                Some(Ok(p)) => if !s.on_upstream_pdu(p).await? { return Ok(()) },
                Some(Err(e)) => return Err(SessionError::Protocol(format!("upstream: {e}"))),
                None => return Err(SessionError::Protocol("the upstream SMSC closed the connection".into())),
            },
            _ = tick.tick() => s.tick().await?,
        }
    }
}
