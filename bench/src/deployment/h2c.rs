//! The load generator's gRPC client: unary calls written as HTTP/2 frames straight onto the
//! socket, one task per connection keeping several calls open on it (the way `h2load` drives a
//! server).
//!
//! The load runs on the same cores as the server it measures, so what the client spends per
//! call is taken from the server. tonic's `Channel` hands every call to a buffer task and
//! back, and even a client on the `h2` crate spends about 23 µs of CPU per call (a task, a
//! stream handle and its wake-ups per call); this one encodes the request headers once per
//! method, writes every frame a read made due in one `write`, and reads all the answers that
//! arrived in one `read`. It still speaks plain gRPC over HTTP/2 and checks every answer:
//! HTTP status 200, one uncompressed length-prefixed message, `grpc-status` 0 in the
//! trailers (a trailers-only answer is an error with its status and message), flow control
//! both ways, and the server's settings, pings and GOAWAY.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use super::hpack::Decoder;

/// Longest the client waits for any frame while calls are open.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

/// The client connection preface (RFC 9113 section 3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

// Frame types and flags (RFC 9113 section 6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// The HTTP/2 default window and frame size.
const DEFAULT_WINDOW: i64 = 65_535;
const DEFAULT_MAX_FRAME: usize = 16_384;
/// What this client lets the server send: per stream and on the connection.
const RECV_WINDOW: u32 = 1 << 24;

/// Checks call `i`'s answer message.
pub type Check<T> = dyn Fn(usize, &[u8]) -> Result<T> + Send + Sync;

/// One unary method's load: the request message of call `i`, and the check of its answer.
pub struct Unary<T> {
    /// `/package.Service/Method`.
    pub path: &'static str,
    /// The protobuf encoding of call `i`'s request.
    pub request: Box<dyn Fn(usize) -> Vec<u8> + Send + Sync>,
    /// Checks call `i`'s answer (its protobuf encoding) and says what the section needs of it.
    pub answer: Box<Check<T>>,
}

/// One answered call: its number, latency (from when it was due, in a closed loop when it was
/// queued, to reading its trailers), how late it was queued after that (open loop; about
/// zero in a closed loop) and what [`Unary::answer`] said.
pub struct Answered<T> {
    pub i: usize,
    pub latency: Duration,
    pub late: Duration,
    pub out: T,
}

/// A call in flight on a connection.
struct Open {
    i: usize,
    started: Instant,
    /// How long after `started` it was written.
    late: Duration,
    /// Whether its response headers arrived.
    headers: bool,
    data: Vec<u8>,
}

/// One cleartext HTTP/2 connection (prior knowledge, `http://` URLs), after the handshake.
pub struct H2Conn {
    sock: TcpStream,
    authority: String,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    decoder: Decoder,
    /// Bytes of DATA the server's connection window still takes.
    send_window: i64,
    /// The server's initial window of a new stream.
    stream_window: i64,
    /// Largest frame payload the server takes.
    max_frame: usize,
    /// The server's limit of concurrent streams.
    max_streams: usize,
    /// DATA bytes read since this client last opened the connection window.
    unacked: u32,
    next_id: u32,
    /// A header block waiting for its CONTINUATION frames: stream, HEADERS flags, bytes.
    partial: Option<(u32, u8, Vec<u8>)>,
    open: HashMap<u32, Open>,
    /// Request bodies waiting for connection window: stream, DATA payload.
    blocked: VecDeque<(u32, Vec<u8>)>,
    /// How many request bodies have waited for connection window.
    waited_for_window: u64,
    /// Calls whose trailers arrived: number, start, the answer's DATA.
    done: Vec<(usize, Instant, Duration, Vec<u8>)>,
    /// Whether the server's SETTINGS arrived.
    settled: bool,
}

impl H2Conn {
    /// Connects to `url` (`http://host:port`) and exchanges settings.
    pub async fn connect(url: &str) -> Result<Self> {
        let uri: http::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
        ensure!(
            uri.scheme() == Some(&http::uri::Scheme::HTTP),
            "the load client speaks cleartext HTTP/2 only; {url} is not http://"
        );
        let authority = uri
            .authority()
            .with_context(|| format!("{url} has no host"))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        // `[::1]` -> `::1`.
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let sock = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect((host, port)))
            .await
            .with_context(|| format!("connecting to {url}: timed out"))?
            .with_context(|| format!("connecting to {url}"))?;
        sock.set_nodelay(true)?;
        let mut conn = Self {
            sock,
            authority: authority.to_string(),
            rbuf: BytesMut::with_capacity(1 << 16),
            wbuf: Vec::with_capacity(1 << 16),
            decoder: Decoder::default(),
            send_window: DEFAULT_WINDOW,
            stream_window: DEFAULT_WINDOW,
            max_frame: DEFAULT_MAX_FRAME,
            max_streams: usize::MAX,
            unacked: 0,
            next_id: 1,
            partial: None,
            open: HashMap::new(),
            blocked: VecDeque::new(),
            waited_for_window: 0,
            done: Vec::new(),
            settled: false,
        };
        conn.wbuf.extend_from_slice(PREFACE);
        // No server push; a large window per stream, and the same for the connection.
        frame_head(&mut conn.wbuf, 12, SETTINGS, 0, 0);
        conn.wbuf.extend_from_slice(&[0, 2, 0, 0, 0, 0]);
        conn.wbuf.extend_from_slice(&[0, 4]);
        conn.wbuf.extend_from_slice(&RECV_WINDOW.to_be_bytes());
        frame_head(&mut conn.wbuf, 4, WINDOW_UPDATE, 0, 0);
        conn.wbuf
            .extend_from_slice(&(RECV_WINDOW - DEFAULT_WINDOW as u32).to_be_bytes());
        let handshake = async {
            while !conn.settled {
                conn.flush().await?;
                conn.read().await?;
            }
            conn.flush().await
        };
        tokio::time::timeout(Duration::from_secs(5), handshake)
            .await
            .with_context(|| format!("HTTP/2 handshake with {url}: timed out"))?
            .with_context(|| format!("HTTP/2 handshake with {url}"))?;
        Ok(conn)
    }

    /// `n` connections to `url`.
    pub async fn many(url: &str, n: usize) -> Result<Vec<Self>> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(Self::connect(url).await?);
        }
        Ok(v)
    }

    /// Writes what is due.
    async fn flush(&mut self) -> Result<()> {
        if !self.wbuf.is_empty() {
            // Bounded: a server that stops reading must not hang the load.
            tokio::time::timeout(RPC_TIMEOUT, self.sock.write_all(&self.wbuf))
                .await
                .map_err(|_| anyhow!("the server took nothing for {RPC_TIMEOUT:?}"))?
                .context("writing to the server")?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads what arrived (at least one byte) and handles every whole frame in it.
    async fn read(&mut self) -> Result<()> {
        self.rbuf.reserve(1 << 16);
        let n = self
            .sock
            .read_buf(&mut self.rbuf)
            .await
            .context("reading from the server")?;
        ensure!(
            n > 0,
            "the server closed the connection with {} calls open",
            self.open.len()
        );
        while self.rbuf.len() >= 9 {
            let h = &self.rbuf[..9];
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            // This client announced no larger SETTINGS_MAX_FRAME_SIZE.
            ensure!(
                len <= DEFAULT_MAX_FRAME,
                "the server sent a frame of {len} bytes (at most {DEFAULT_MAX_FRAME} allowed)"
            );
            if self.rbuf.len() < 9 + len {
                break;
            }
            let (ty, flags) = (h[3], h[4]);
            let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            self.rbuf.advance(9);
            let payload = self.rbuf.split_to(len);
            self.frame(ty, flags, stream, &payload)?;
        }
        Ok(())
    }

    /// Handles one frame.
    fn frame(&mut self, ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Result<()> {
        if let Some((s, _, _)) = &self.partial {
            ensure!(
                ty == CONTINUATION && stream == *s,
                "a header block of stream {s} was interrupted by a frame of type {ty}"
            );
        }
        match ty {
            DATA => {
                self.unacked += payload.len() as u32;
                if self.unacked >= RECV_WINDOW / 2 {
                    frame_head(&mut self.wbuf, 4, WINDOW_UPDATE, 0, 0);
                    self.wbuf.extend_from_slice(&self.unacked.to_be_bytes());
                    self.unacked = 0;
                }
                let body = unpad(flags, payload)?;
                let call = self
                    .open
                    .get_mut(&stream)
                    .with_context(|| format!("DATA on stream {stream}, which has no open call"))?;
                ensure!(
                    call.headers,
                    "call {}: DATA before the response headers",
                    call.i
                );
                call.data.extend_from_slice(body);
                ensure!(
                    call.data.len() < RECV_WINDOW as usize,
                    "call {}: answer larger than the stream window",
                    call.i
                );
                ensure!(
                    flags & END_STREAM == 0,
                    "call {}: the answer ended without trailers (no grpc-status)",
                    call.i
                );
            }
            HEADERS => {
                let mut block = unpad(flags, payload)?;
                if flags & PRIORITY != 0 {
                    ensure!(block.len() >= 5, "HEADERS too short for its priority");
                    block = &block[5..];
                }
                if flags & END_HEADERS != 0 {
                    self.headers(stream, flags, block)?;
                } else {
                    self.partial = Some((stream, flags, block.to_vec()));
                }
            }
            CONTINUATION => {
                let (s, first_flags, mut block) = self
                    .partial
                    .take()
                    .context("CONTINUATION without a header block")?;
                block.extend_from_slice(payload);
                if flags & END_HEADERS != 0 {
                    self.headers(s, first_flags, &block)?;
                } else {
                    self.partial = Some((s, first_flags, block));
                }
            }
            RST_STREAM => {
                let code = u32_at(payload, 0)?;
                let call = self.open.get(&stream).map(|c| c.i.to_string());
                bail!(
                    "call {}: the server reset its stream (HTTP/2 error {code})",
                    call.unwrap_or_else(|| format!("on stream {stream}"))
                );
            }
            SETTINGS if flags & ACK == 0 => {
                ensure!(payload.len().is_multiple_of(6), "malformed SETTINGS");
                for s in payload.chunks_exact(6) {
                    let value = u32_at(s, 2)?;
                    match u16::from_be_bytes([s[0], s[1]]) {
                        3 => self.max_streams = value as usize,
                        4 => self.stream_window = i64::from(value),
                        5 => self.max_frame = value as usize,
                        _ => {}
                    }
                }
                frame_head(&mut self.wbuf, 0, SETTINGS, ACK, 0);
                self.settled = true;
            }
            PING if flags & ACK == 0 => {
                frame_head(&mut self.wbuf, payload.len(), PING, ACK, 0);
                self.wbuf.extend_from_slice(payload);
            }
            GOAWAY => {
                let code = u32_at(payload, 4)?;
                let debug = String::from_utf8_lossy(payload.get(8..).unwrap_or_default());
                bail!(
                    "the server closed the connection with {} calls open (GOAWAY, HTTP/2 error \
                     {code}: {debug})",
                    self.open.len()
                );
            }
            WINDOW_UPDATE if stream == 0 => {
                self.send_window += i64::from(u32_at(payload, 0)? & 0x7fff_ffff);
                while let Some((_, data)) = self.blocked.front() {
                    if data.len() as i64 > self.send_window {
                        break;
                    }
                    let (id, data) = self.blocked.pop_front().expect("front exists");
                    self.data(id, &data);
                }
            }
            PUSH_PROMISE => bail!("the server pushed a stream, which this client disabled"),
            _ => {}
        }
        Ok(())
    }

    /// A whole header block of `stream`: the response headers, or the trailers that end it.
    fn headers(&mut self, stream: u32, flags: u8, block: &[u8]) -> Result<()> {
        // Decoded always: the decoder's table follows every block the server sent.
        let (mut status, mut grpc_status, mut grpc_message) = (None, None, None);
        self.decoder.decode(block, |name, value| {
            let slot = match name {
                b":status" => &mut status,
                b"grpc-status" => &mut grpc_status,
                b"grpc-message" => &mut grpc_message,
                _ => return,
            };
            *slot = Some(String::from_utf8_lossy(value).into_owned());
        })?;
        let call = self
            .open
            .get_mut(&stream)
            .with_context(|| format!("HEADERS on stream {stream}, which has no open call"))?;
        let end = flags & END_STREAM != 0;
        if !call.headers {
            let status = status.unwrap_or_default();
            ensure!(status == "200", "call {}: HTTP status {status:?}", call.i);
            if grpc_status.is_some() {
                // Trailers-only: an error (or an empty answer, which no method here gives).
                check_status(call.i, grpc_status, grpc_message)?;
                bail!("call {}: answered without a message", call.i);
            }
            ensure!(
                !end,
                "call {}: answered without a message or trailers",
                call.i
            );
            call.headers = true;
        } else {
            ensure!(
                end,
                "call {}: a second header block that does not end the call",
                call.i
            );
            check_status(call.i, grpc_status, grpc_message)?;
            let call = self.open.remove(&stream).expect("the call is open");
            self.done.push((call.i, call.started, call.late, call.data));
        }
        Ok(())
    }

    /// Queues call `i`'s HEADERS (the pre-encoded `block`) and its DATA, due at `due` (its
    /// latency runs from then).
    fn start(&mut self, i: usize, block: &[u8], message: &[u8], due: Instant) -> Result<()> {
        ensure!(
            self.open.len() < self.max_streams,
            "more calls in flight on one connection than the server's limit of {}",
            self.max_streams
        );
        let id = self.next_id;
        ensure!(id < 1 << 31, "stream ids of the connection used up");
        self.next_id += 2;
        let mut data = Vec::with_capacity(5 + message.len());
        data.push(0);
        data.extend_from_slice(&u32::try_from(message.len())?.to_be_bytes());
        data.extend_from_slice(message);
        ensure!(
            data.len() as i64 <= self.stream_window && data.len() <= self.max_frame,
            "a request of {} bytes does not fit one frame of the server's window",
            data.len()
        );
        frame_head(&mut self.wbuf, block.len(), HEADERS, END_HEADERS, id);
        self.wbuf.extend_from_slice(block);
        if self.blocked.is_empty() && data.len() as i64 <= self.send_window {
            self.data(id, &data);
        } else {
            self.blocked.push_back((id, data));
            self.waited_for_window += 1;
        }
        self.open.insert(
            id,
            Open {
                i,
                started: due,
                late: Instant::now().saturating_duration_since(due),
                headers: false,
                data: Vec::new(),
            },
        );
        Ok(())
    }

    /// Queues the one DATA frame of a request, ending its stream.
    fn data(&mut self, id: u32, data: &[u8]) {
        frame_head(&mut self.wbuf, data.len(), DATA, END_STREAM, id);
        self.wbuf.extend_from_slice(data);
        self.send_window -= data.len() as i64;
    }

    /// Runs the calls of `slots` (the numbers of their first calls; each slot's next call is
    /// `in_flight` later, up to `end`), all open at once, each replaced by its successor when
    /// answered.
    async fn drive<T>(
        &mut self,
        unary: &Unary<T>,
        slots: Vec<usize>,
        in_flight: usize,
        end: usize,
    ) -> Result<Vec<Answered<T>>> {
        let block = request_block(unary.path, &self.authority);
        let mut out = Vec::new();
        let now = Instant::now();
        for i in slots.into_iter().filter(|&i| i < end) {
            self.start(i, &block, &(unary.request)(i), now)?;
        }
        while !self.open.is_empty() {
            self.flush().await?;
            tokio::time::timeout(RPC_TIMEOUT, self.read())
                .await
                .map_err(|_| anyhow!("no answer in {RPC_TIMEOUT:?}"))??;
            let now = Instant::now();
            let from = out.len();
            self.take_answers(unary, now, &mut out)?;
            let successors: Vec<usize> = out[from..]
                .iter()
                .map(|a| a.i + in_flight)
                .filter(|&next| next < end)
                .collect();
            for next in successors {
                self.start(next, &block, &(unary.request)(next), now)?;
            }
        }
        self.flush().await?;
        Ok(out)
    }

    /// Sends each of `calls` (number, when it is due) when due, whatever is still unanswered,
    /// and reads the answers; a call's latency runs from when it was due. Returns the answers
    /// and how late the latest send was.
    async fn drive_open<T>(
        &mut self,
        unary: &Unary<T>,
        calls: &[(usize, Instant)],
    ) -> Result<(Vec<Answered<T>>, Duration)> {
        let block = request_block(unary.path, &self.authority);
        let (mut out, mut next, mut late) = (Vec::with_capacity(calls.len()), 0, Duration::ZERO);
        loop {
            let now = Instant::now();
            // A call due while the server's stream limit is reached waits for a free stream
            // (its latency still runs from when it was due).
            while let Some(&(i, due)) = calls
                .get(next)
                .filter(|(_, due)| *due <= now && self.open.len() < self.max_streams)
            {
                late = late.max(now - due);
                self.start(i, &block, &(unary.request)(i), due)?;
                next += 1;
            }
            if next == calls.len() && self.open.is_empty() {
                break;
            }
            self.flush().await?;
            match calls.get(next) {
                Some(&(_, due)) if self.open.is_empty() => {
                    tokio::time::sleep_until(due.into()).await;
                }
                Some(_) if self.open.len() >= self.max_streams => {
                    tokio::time::timeout(RPC_TIMEOUT, self.read())
                        .await
                        .map_err(|_| anyhow!("no answer in {RPC_TIMEOUT:?}"))??;
                }
                Some(&(_, due)) => {
                    tokio::select! {
                        read = self.read() => read?,
                        () = tokio::time::sleep_until(due.into()) => {}
                    }
                }
                None => tokio::time::timeout(RPC_TIMEOUT, self.read())
                    .await
                    .map_err(|_| anyhow!("no answer in {RPC_TIMEOUT:?}"))??,
            }
            self.take_answers(unary, Instant::now(), &mut out)?;
        }
        self.flush().await?;
        Ok((out, late))
    }

    /// Checks the calls whose trailers arrived (read at `now`) and appends them to `out`.
    fn take_answers<T>(
        &mut self,
        unary: &Unary<T>,
        now: Instant,
        out: &mut Vec<Answered<T>>,
    ) -> Result<()> {
        for (i, started, late, data) in std::mem::take(&mut self.done) {
            let message = unframe(&data).with_context(|| format!("call {i}"))?;
            out.push(Answered {
                i,
                latency: now - started,
                late,
                out: (unary.answer)(i, message)?,
            });
        }
        Ok(())
    }
}

/// Calls numbered `from..from + count` offered at `rate` per second (call `from + j` due
/// `j / rate` seconds after the start, on connection `j % conns.len()`), each sent when due
/// however many are unanswered (an open loop: a slow answer does not delay the next request).
/// Returns the calls in order (latency from when each was due, so a client that falls behind
/// counts against the server, never for it), the wall time from the start to the last answer,
/// and how late the latest send was.
pub async fn open_loop<T: Send + 'static>(
    conns: &mut Vec<H2Conn>,
    rate: f64,
    from: usize,
    count: usize,
    unary: Arc<Unary<T>>,
) -> Result<(Vec<Answered<T>>, Duration, Duration)> {
    let n = conns.len();
    ensure!(n > 0 && rate > 0.0, "no connections or no rate");
    // A moment to spawn the connection tasks before the first call is due.
    let start = Instant::now() + Duration::from_millis(20);
    let mut set = JoinSet::new();
    for (c, mut conn) in std::mem::take(conns).into_iter().enumerate() {
        let unary = unary.clone();
        let calls: Vec<(usize, Instant)> = (c..count)
            .step_by(n)
            .map(|j| (from + j, start + Duration::from_secs_f64(j as f64 / rate)))
            .collect();
        set.spawn(async move {
            let (out, late) = conn
                .drive_open(&unary, &calls)
                .await
                .with_context(|| format!("{} on connection {c}", unary.path))?;
            Ok::<_, anyhow::Error>((c, conn, Instant::now(), out, late))
        });
    }
    let (mut back, mut calls) = (Vec::with_capacity(n), Vec::with_capacity(count));
    let (mut last, mut late) = (start, Duration::ZERO);
    while let Some(r) = set.join_next().await {
        let (c, conn, end, out, l) = r.context("a load task panicked")??;
        last = last.max(end);
        late = late.max(l);
        back.push((c, conn));
        calls.extend(out);
    }
    back.sort_unstable_by_key(|(c, _)| *c);
    *conns = back.into_iter().map(|(_, conn)| conn).collect();
    calls.sort_unstable_by_key(|c| c.i);
    Ok((calls, last - start, late))
}

/// Calls numbered `from..from + count` with `in_flight` open at a time (a closed loop): call
/// slot `k` runs on connection `k % conns.len()` and sends calls `from + k`,
/// `from + k + in_flight`, ... each when the previous one was answered. The connections start
/// together. Returns the calls in order and the wall time from the first start to the last
/// answer.
pub async fn closed_loop<T: Send + 'static>(
    conns: &mut Vec<H2Conn>,
    in_flight: usize,
    from: usize,
    count: usize,
    unary: Arc<Unary<T>>,
) -> Result<(Vec<Answered<T>>, Duration)> {
    let n = conns.len();
    ensure!(n > 0 && in_flight > 0, "no connections or calls in flight");
    let barrier = Arc::new(Barrier::new(n));
    let mut set = JoinSet::new();
    for (c, mut conn) in std::mem::take(conns).into_iter().enumerate() {
        let (unary, barrier) = (unary.clone(), barrier.clone());
        let slots: Vec<usize> = (0..in_flight)
            .filter(|k| k % n == c)
            .map(|k| from + k)
            .collect();
        set.spawn(async move {
            barrier.wait().await;
            let start = Instant::now();
            let out = conn
                .drive(&unary, slots, in_flight, from + count)
                .await
                .with_context(|| format!("{} on connection {c}", unary.path))?;
            Ok::<_, anyhow::Error>((c, conn, start, Instant::now(), out))
        });
    }
    let (mut back, mut calls) = (Vec::with_capacity(n), Vec::with_capacity(count));
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    while let Some(r) = set.join_next().await {
        let (c, conn, start, end, out) = r.context("a load task panicked")??;
        first = Some(first.map_or(start, |f| f.min(start)));
        last = Some(last.map_or(end, |l| l.max(end)));
        back.push((c, conn));
        calls.extend(out);
    }
    back.sort_unstable_by_key(|(c, _)| *c);
    *conns = back.into_iter().map(|(_, conn)| conn).collect();
    let (Some(first), Some(last)) = (first, last) else {
        bail!("no load tasks ran");
    };
    calls.sort_unstable_by_key(|c| c.i);
    Ok((calls, last - first))
}

/// The HPACK block of a request to `path`: literals without indexing, so it is the same for
/// every call (RFC 7541: `:method POST` and `:scheme http` from the static table, then
/// `:path`, `:authority`, `content-type` with static names, `te` with a literal name).
fn request_block(path: &str, authority: &str) -> Vec<u8> {
    let mut b = vec![0x83, 0x86];
    literal(&mut b, 4, path.as_bytes());
    literal(&mut b, 1, authority.as_bytes());
    literal(&mut b, 31, b"application/grpc");
    b.push(0x00);
    string(&mut b, b"te");
    string(&mut b, b"trailers");
    b
}

/// Appends a frame header.
fn frame_head(out: &mut Vec<u8>, len: usize, ty: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[ty, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
}

/// A frame's payload without its padding (when `PADDED` is set).
fn unpad(flags: u8, payload: &[u8]) -> Result<&[u8]> {
    if flags & PADDED == 0 {
        return Ok(payload);
    }
    let pad = *payload
        .first()
        .context("padded frame without its pad length")? as usize;
    ensure!(pad < payload.len(), "padding longer than the frame");
    Ok(&payload[1..payload.len() - pad])
}

/// The big-endian `u32` at `at`.
fn u32_at(b: &[u8], at: usize) -> Result<u32> {
    let s = b.get(at..at + 4).context("frame too short")?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// HPACK integer with an `n`-bit prefix, the first byte's high bits `flags` (RFC 7541 5.1).
fn integer(out: &mut Vec<u8>, n: u32, flags: u8, mut v: usize) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(flags | v as u8);
        return;
    }
    out.push(flags | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v % 128) as u8 | 0x80);
        v /= 128;
    }
    out.push(v as u8);
}

/// HPACK string literal, not Huffman coded.
fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 7, 0, s.len());
    out.extend_from_slice(s);
}

/// HPACK literal field without indexing, its name from static table entry `name`.
fn literal(out: &mut Vec<u8>, name: usize, value: &[u8]) {
    integer(out, 4, 0x00, name);
    string(out, value);
}

/// The one message of a unary answer: flag 0 (uncompressed), length (big-endian u32), bytes.
fn unframe(data: &[u8]) -> Result<&[u8]> {
    ensure!(data.len() >= 5, "answer shorter than a message header");
    ensure!(data[0] == 0, "compressed answer (none was asked for)");
    let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
    ensure!(
        data.len() == 5 + len,
        "answer of {} bytes for one message of {len}",
        data.len()
    );
    Ok(&data[5..])
}

/// Fails unless `grpc-status` is 0, with the status and message.
fn check_status(call: usize, status: Option<String>, message: Option<String>) -> Result<()> {
    let code = status.with_context(|| format!("call {call}: no grpc-status"))?;
    if code != "0" {
        bail!(
            "call {call}: grpc-status {code}: {}",
            message.unwrap_or_default()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_unframe_to_their_one_message() {
        assert_eq!(unframe(&[0, 0, 0, 0, 2, 7, 8]).unwrap(), &[7, 8]);
        assert_eq!(unframe(&[0, 0, 0, 0, 0]).unwrap(), &[] as &[u8]);
        assert!(unframe(&[0, 0, 0]).is_err());
        assert!(unframe(&[1, 0, 0, 0, 1, 7]).is_err(), "compressed");
        assert!(unframe(&[0, 0, 0, 0, 1, 7, 8]).is_err(), "trailing bytes");
        assert!(unframe(&[0, 0, 0, 0, 3, 7]).is_err(), "short");
    }

    #[test]
    fn statuses_other_than_ok_are_errors() {
        assert!(check_status(1, None, None).is_err());
        assert!(check_status(1, Some("0".into()), None).is_ok());
        let e = check_status(7, Some("5".into()), Some("not found".into()))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("call 7") && e.contains('5') && e.contains("not found"),
            "{e}"
        );
    }

    #[test]
    fn hpack_integers_follow_rfc_7541() {
        // RFC 7541 C.1.1-C.1.3.
        let mut b = Vec::new();
        integer(&mut b, 5, 0, 10);
        assert_eq!(b, [0x0a]);
        b.clear();
        integer(&mut b, 5, 0, 1337);
        assert_eq!(b, [0x1f, 0x9a, 0x0a]);
        b.clear();
        integer(&mut b, 8, 0, 42);
        assert_eq!(b, [0x2a]);
        b.clear();
        integer(&mut b, 4, 0, 31);
        assert_eq!(b, [0x0f, 0x10]);
    }

    #[test]
    fn the_request_block_decodes_to_a_grpc_request() {
        let block = request_block(
            "/steward.deployment.v1.DeploymentService/Route",
            "127.0.0.1:50051",
        );
        let mut fields = Vec::new();
        Decoder::default()
            .decode(&block, |n, v| {
                fields.push((
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                ))
            })
            .unwrap();
        let want = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/steward.deployment.v1.DeploymentService/Route"),
            (":authority", "127.0.0.1:50051"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
        ];
        assert_eq!(
            fields,
            want.map(|(n, v)| (n.to_string(), v.to_string())).to_vec()
        );
    }

    /// A health service name of `n` bytes.
    fn long_name(n: usize) -> &'static str {
        Box::leak("s".repeat(n).into_boxed_str())
    }

    /// A tonic server with the health service, `svc` and a 15,000-byte name serving, and a
    /// connection window of `window` bytes if given; its address.
    async fn health_server_with(window: Option<u32>) -> String {
        let (reporter, service) = tonic_health::server::health_reporter();
        for name in ["svc", long_name(15_000)] {
            reporter
                .set_service_status(name, tonic_health::ServingStatus::Serving)
                .await;
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // Keep the reporter alive while the server runs.
            let _reporter = reporter;
            tonic::transport::Server::builder()
                .initial_connection_window_size(window)
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        format!("http://{addr}")
    }

    async fn health_server() -> String {
        health_server_with(None).await
    }

    fn health_check(service: &'static str) -> Arc<Unary<i32>> {
        use prost::Message as _;
        use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
        Arc::new(Unary {
            path: "/grpc.health.v1.Health/Check",
            request: Box::new(move |_| {
                HealthCheckRequest {
                    service: service.into(),
                }
                .encode_to_vec()
            }),
            answer: Box::new(|_, bytes| Ok(HealthCheckResponse::decode(bytes)?.status)),
        })
    }

    #[tokio::test]
    async fn a_closed_loop_of_calls_against_a_tonic_server() {
        let url = health_server().await;
        let mut conns = H2Conn::many(&url, 2).await.unwrap();
        // Many calls on each connection: the server's HPACK table is reused across answers.
        let (calls, wall) = closed_loop(&mut conns, 16, 100, 5_000, health_check("svc"))
            .await
            .unwrap();
        assert!(wall > Duration::ZERO);
        assert_eq!(calls.len(), 5_000);
        for (k, c) in calls.iter().enumerate() {
            assert_eq!(c.i, 100 + k);
            assert_eq!(c.out, 1, "SERVING");
        }
        // The connections come back usable, in order.
        assert_eq!(conns.len(), 2);
        let (again, _) = closed_loop(&mut conns, 3, 0, 7, health_check("svc"))
            .await
            .unwrap();
        assert_eq!(
            again.iter().map(|c| c.i).collect::<Vec<_>>(),
            (0..7).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn requests_past_the_servers_window_wait_for_its_window_updates() {
        // 64 KiB of connection window; 8 requests of ~15 KB in flight need twice that.
        let url = health_server_with(Some(65_535)).await;
        let mut conns = vec![H2Conn::connect(&url).await.unwrap()];
        let run = closed_loop(&mut conns, 8, 0, 400, health_check(long_name(15_000)));
        let (calls, _) = tokio::time::timeout(Duration::from_secs(60), run)
            .await
            .expect("window updates are followed (no hang)")
            .unwrap();
        assert_eq!(calls.len(), 400);
        assert!(calls.iter().all(|c| c.out == 1));
        assert!(
            conns[0].waited_for_window > 0,
            "the requests did exceed the server's window"
        );
    }

    #[tokio::test]
    async fn an_open_loop_sends_on_schedule_and_answers_every_call() {
        let url = health_server().await;
        let mut conns = H2Conn::many(&url, 3).await.unwrap();
        // 2,000 calls at 10,000/s: due over 0.2 s.
        let (calls, wall, late) = open_loop(&mut conns, 10_000.0, 5, 2_000, health_check("svc"))
            .await
            .unwrap();
        assert_eq!(calls.len(), 2_000);
        for (k, c) in calls.iter().enumerate() {
            assert_eq!((c.i, c.out), (5 + k, 1));
        }
        assert!(wall >= Duration::from_millis(199), "{wall:?}");
        assert!(late < Duration::from_secs(1), "{late:?}");
        assert_eq!(conns.len(), 3);
        let e = open_loop(&mut conns, 1_000.0, 0, 10, health_check("nope"))
            .await
            .err()
            .expect("NOT_FOUND fails the load");
        assert!(format!("{e:#}").contains("grpc-status 5"), "{e:#}");
    }

    #[tokio::test]
    async fn an_error_status_fails_the_load_with_its_code_and_message() {
        let url = health_server().await;
        let mut conns = vec![H2Conn::connect(&url).await.unwrap()];
        let e = closed_loop(&mut conns, 2, 0, 4, health_check("nope"))
            .await
            .err()
            .expect("NOT_FOUND must fail the load");
        let e = format!("{e:#}");
        // tonic-health answers NOT_FOUND (5) for an unknown service.
        assert!(e.contains("grpc-status 5"), "{e}");
        assert!(e.contains("/grpc.health.v1.Health/Check"), "{e}");
    }

    #[tokio::test]
    async fn a_server_that_is_not_http2_is_an_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n")
                .await
                .unwrap();
        });
        assert!(H2Conn::connect(&format!("http://{addr}")).await.is_err());
        assert!(H2Conn::connect("https://127.0.0.1:1").await.is_err());
    }

    #[test]
    fn padding_is_stripped_and_checked() {
        assert_eq!(unpad(0, &[1, 2]).unwrap(), &[1, 2]);
        assert_eq!(unpad(PADDED, &[2, 9, 0, 0]).unwrap(), &[9]);
        assert!(unpad(PADDED, &[4, 9, 0]).is_err());
        assert!(unpad(PADDED, &[]).is_err());
    }
}
