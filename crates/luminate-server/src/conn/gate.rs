//! gate: the I/O through which hyper reads and writes one connection. Every byte received passes the
//! [`Framer`] first, so hyper only ever parses request heads that were checked; a refused head is
//! replaced by [`STAND_IN_HEAD`], which the dispatch (`super::Dispatch`) answers with the refusal — in
//! order after the responses to earlier pipelined requests, and with `connection: close`.
//!
//! The gate also keeps the connection's clocks, which run only while a request head is awaited:
//! - the first request's head must be complete within `server.header_read_timeout` of the accept, a
//!   later one within that time of its first byte (a slowloris client trickling a head is dropped);
//! - after a response, with no request running, nothing received and nothing written for
//!   `server.idle_timeout`, the connection closes (an idle keep-alive connection, or a client that
//!   stopped reading its response).
//!
//! On either, hyper reads end-of-stream: it closes without a response, as it does when a client
//! leaves. A body being received has no clock here: its handler reads it within
//! `server.read_timeout` (`crate::body`).

use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::framing::{Framer, Refusal, Verdict};
use super::{ConnectionState, Timeouts};

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// What a refused head is replaced with: a request hyper accepts, which never reaches the router, and
/// after whose response hyper closes the connection.
const STAND_IN_HEAD: &[u8] = b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n";
/// After the answer to a refused head, how long the connection goes on reading (and discarding) what the
/// client still sends before it closes, and how much at most: closing a socket with unread bytes makes
/// the kernel send a reset, which can destroy the answer before the client has read it.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 1 << 20;

/// One connection's stream, seen by hyper.
pub(super) struct Gate<S> {
    stream: S,
    /// Received and not yet taken by hyper; the first `passable` bytes are checked.
    inbound: Vec<u8>,
    passable: usize,
    framer: Framer,
    /// Heads let through (a stand-in included): the index the dispatch gives each request.
    heads: u64,
    connection: Arc<ConnectionState>,
    timeouts: Timeouts,
    accepted: Instant,
    /// When the first byte of the pending head (after the first request's) arrived.
    head_started: Option<Instant>,
    last_write: Instant,
    timer: Pin<Box<Sleep>>,
    /// Where `timer` is set, so that it is only reset when the deadline moves.
    timer_at: Option<Instant>,
    /// The client closed its side, or a clock ran out: hyper reads end-of-stream once the passable bytes
    /// are taken.
    ended: bool,
    /// A head was refused: nothing more is read but the stand-in.
    refused: bool,
    write_closed: bool,
    /// Bytes discarded while lingering.
    lingered: usize,
}

impl<S> Gate<S> {
    /// A gate over a connection accepted now.
    pub(super) fn new(stream: S, timeouts: Timeouts, connection: Arc<ConnectionState>) -> Self {
        let now = Instant::now();
        Self {
            stream,
            inbound: Vec::new(),
            passable: 0,
            framer: Framer::default(),
            heads: 0,
            connection,
            timeouts,
            accepted: now,
            head_started: None,
            last_write: now,
            timer: Box::pin(tokio::time::sleep_until(now)),
            timer_at: None,
            ended: false,
            refused: false,
            write_closed: false,
            lingered: 0,
        }
    }

    /// When the connection closes unless a request head completes (or the next one starts), and why.
    fn deadline(&mut self) -> Option<(Instant, &'static str)> {
        if !self.framer.awaiting_head() {
            return None;
        }
        let header_read = self.timeouts.header_read;
        if self.heads == 0 {
            return Some((
                self.accepted + header_read,
                "no complete request head within server.header_read_timeout of the accept",
            ));
        }
        if !self.inbound.is_empty() {
            let started = *self.head_started.get_or_insert_with(Instant::now);
            return Some((
                started + header_read,
                "request head not complete within server.header_read_timeout",
            ));
        }
        if self.connection.requests_in_flight() > 0 {
            return None;
        }
        Some((
            self.last_write + self.timeouts.idle,
            "idle for server.idle_timeout",
        ))
    }

    /// Whether the clock that runs now has run out (if not, the task is woken when it does).
    fn clock_ran_out(&mut self, cx: &mut Context<'_>) -> bool {
        let Some((deadline, why)) = self.deadline() else {
            return false;
        };
        if self.timer_at != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.timer_at = Some(deadline);
        }
        if self.timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        tracing::debug!(reason = why, "closing the connection");
        true
    }

    /// Replaces the refused head, and everything received after it, by the stand-in.
    fn refuse(&mut self, refusal: Refusal) {
        tracing::debug!(message = %refusal.message, "request head refused");
        self.connection.refuse(self.heads, refusal);
        self.heads += 1;
        self.inbound.clear();
        self.inbound.extend_from_slice(STAND_IN_HEAD);
        self.passable = STAND_IN_HEAD.len();
        self.refused = true;
    }
}

impl<S: AsyncRead + Unpin> Gate<S> {
    /// Reads what the socket has into `inbound` (or notes its end).
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut chunk = [0u8; READ_CHUNK];
        let mut buf = ReadBuf::new(&mut chunk);
        ready!(Pin::new(&mut self.stream).poll_read(cx, &mut buf))?;
        if buf.filled().is_empty() {
            self.ended = true;
        }
        self.inbound.extend_from_slice(buf.filled());
        Poll::Ready(Ok(()))
    }

    /// After a refusal's answer: reads and discards until the client closes, [`LINGER`] passes or
    /// [`LINGER_BYTES`] were discarded.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.timer.as_mut().poll(cx).is_ready() || self.lingered > LINGER_BYTES {
                return Poll::Ready(());
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            match ready!(Pin::new(&mut self.stream).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => self.lingered += buf.filled().len(),
                _ => return Poll::Ready(()),
            }
        }
    }
}

impl<S: AsyncRead + Unpin> Read for Gate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let gate = self.get_mut();
        loop {
            if gate.passable > 0 {
                let n = gate.passable.min(buf.remaining());
                buf.put_slice(&gate.inbound[..n]);
                gate.inbound.drain(..n);
                gate.passable -= n;
                return Poll::Ready(Ok(()));
            }
            if gate.ended {
                return Poll::Ready(Ok(()));
            }
            if gate.refused {
                // hyper answers the stand-in and closes; nothing the client sends now is read.
                return Poll::Pending;
            }
            match gate.framer.check(&gate.inbound) {
                Verdict::Head(n) => {
                    gate.passable = n;
                    gate.heads += 1;
                    gate.head_started = None;
                    continue;
                }
                Verdict::Body(n) => {
                    gate.passable = n;
                    continue;
                }
                Verdict::Refused(refusal) => {
                    gate.refuse(refusal);
                    continue;
                }
                Verdict::Broken(reason) => {
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, reason)));
                }
                Verdict::NeedMore => {}
            }
            if gate.clock_ran_out(cx) {
                gate.ended = true;
                continue;
            }
            ready!(gate.poll_receive(cx))?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Write for Gate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let gate = self.get_mut();
        let written = ready!(Pin::new(&mut gate.stream).poll_write(cx, buf))?;
        gate.last_write = Instant::now();
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let gate = self.get_mut();
        let written = ready!(Pin::new(&mut gate.stream).poll_write_vectored(cx, bufs))?;
        gate.last_write = Instant::now();
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let gate = self.get_mut();
        if !gate.write_closed {
            ready!(Pin::new(&mut gate.stream).poll_shutdown(cx))?;
            gate.write_closed = true;
            if gate.refused {
                gate.timer.as_mut().reset(Instant::now() + LINGER);
                gate.timer_at = None;
            }
        }
        if gate.refused {
            ready!(gate.poll_linger(cx));
        }
        Poll::Ready(Ok(()))
    }
}
