//! framing: where each HTTP/1.1 request on a connection begins and ends, decided from the bytes before
//! hyper sees them. Owns the rules a request head must pass (limits, `Transfer-Encoding`,
//! `Content-Length`) and the body framing that follows from them; knows nothing of sockets, timers or
//! routes (the [`super::gate`] feeds it bytes and acts on its verdicts).
//!
//! A head is checked whole (with `httparse`, hyper's own parser) before any of it passes. What follows it
//! passes only as far as the body framing says the request extends — `Content-Length` bytes, or a chunked
//! body to its last chunk and trailers, scanned by the same rules as hyper's decoder — so the next head
//! is always found where hyper will find it, pipelined or not.
//!
//! Refused, with `Refusal`'s kind deciding the status (`crate::error::refused_head`):
//! - a request target longer than [`MAX_TARGET_BYTES`] (414);
//! - a head larger than [`MAX_HEAD_BYTES`], or with more than [`MAX_HEADERS`] fields (431);
//! - a head that does not parse (request line, header names or bytes), a method or target that is not
//!   valid, a `Content-Length` that is not one decimal number, `Transfer-Encoding` anything but exactly
//!   `chunked` (`gzip, chunked` included: the server decodes no transfer coding but chunked), on HTTP/1.0,
//!   or together with `Content-Length` (RFC 9112 §6.1 allows refusing it; processing the request by one of
//!   the two is how requests get smuggled past proxies that chose the other) (400).

use axum::http::{Method, Uri};

/// The largest request head (request line, header fields and the blank line): JWTs and a few dozen
/// headers fit many times over.
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The longest request target (path and query string).
pub(crate) const MAX_TARGET_BYTES: usize = 16 * 1024;
/// The most header fields in a head (hyper's own limit, so that no head we pass is refused by hyper).
pub(crate) const MAX_HEADERS: usize = 100;
/// Bytes of chunk extensions over one body, and of trailers: hyper's limits.
const MAX_CHUNK_EXTENSION_BYTES: u64 = 16 * 1024;
const MAX_TRAILER_BYTES: usize = 16 * 1024;

/// Why a head was refused, deciding the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefusalKind {
    /// `414 URI Too Long`.
    TargetTooLong,
    /// `431 Request Header Fields Too Large`.
    HeadTooLarge,
    /// `400 Bad Request`.
    Malformed,
}

/// A refused head: its kind and what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// Decides the status.
    pub kind: RefusalKind,
    /// The message of the error body.
    pub message: String,
}

impl Refusal {
    fn malformed(message: impl Into<String>) -> Self {
        Self {
            kind: RefusalKind::Malformed,
            message: message.into(),
        }
    }
}

/// What may happen to the unchecked bytes at the front of a connection's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing can pass until more bytes arrive.
    NeedMore,
    /// A checked request head of this many bytes may pass.
    Head(usize),
    /// This many bytes of the current request's body may pass.
    Body(usize),
    /// The head at the front is refused (it, and everything after it, will never pass).
    Refused(Refusal),
    /// The chunked body does not follow the chunked framing: the connection cannot go on.
    Broken(String),
}

/// One connection's position in its stream of requests.
#[derive(Debug, Default)]
pub(crate) struct Framer {
    state: State,
    /// Bytes of the pending head already searched for its end (so a head arriving a byte at a time is
    /// not searched again from its start each time).
    searched: usize,
}

#[derive(Debug, Default)]
enum State {
    /// Before a request head.
    #[default]
    Head,
    /// In a `Content-Length` body: bytes left.
    Length(u64),
    /// In a chunked body.
    Chunked(Chunked),
    /// The chunked framing broke: nothing more passes.
    Broken(String),
}

impl Framer {
    /// Whether the next bytes belong to a request head (no body is being received).
    pub(crate) fn awaiting_head(&self) -> bool {
        matches!(self.state, State::Head)
    }

    /// The verdict on `input`, the bytes received and not yet let through.
    pub(crate) fn check(&mut self, input: &[u8]) -> Verdict {
        match &mut self.state {
            State::Head => self.check_head(input),
            State::Length(left) => {
                if input.is_empty() {
                    return Verdict::NeedMore;
                }
                let n = usize::try_from(*left).map_or(input.len(), |l| l.min(input.len()));
                *left -= n as u64;
                if *left == 0 {
                    self.state = State::Head;
                }
                Verdict::Body(n)
            }
            State::Chunked(chunked) => match chunked.scan(input) {
                Ok((0, false)) => Verdict::NeedMore,
                Ok((n, done)) => {
                    if done {
                        self.state = State::Head;
                    }
                    Verdict::Body(n)
                }
                Err(reason) => {
                    self.state = State::Broken(reason.clone());
                    Verdict::Broken(reason)
                }
            },
            State::Broken(reason) => Verdict::Broken(reason.clone()),
        }
    }

    fn check_head(&mut self, input: &[u8]) -> Verdict {
        // Empty lines before a request line are skipped, as hyper does (RFC 9112 §2.2).
        let start = input
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .unwrap_or(input.len());
        let Some(end) = head_end(input, start.max(self.searched)) else {
            self.searched = input.len().saturating_sub(2).max(start);
            return match oversized_partial_head(&input[start..]) {
                Some(refusal) => Verdict::Refused(refusal),
                None => Verdict::NeedMore,
            };
        };
        self.searched = 0;
        match check_complete_head(&input[..end]) {
            Ok((len, body)) => {
                self.state = body;
                Verdict::Head(len)
            }
            Err(refusal) => Verdict::Refused(refusal),
        }
    }
}

/// The index just past the blank line ending the head that starts before `from` (`\n\n` or `\n\r\n`:
/// bare line feeds are accepted as httparse does), searching from `from`.
fn head_end(input: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = input.get(i..)?.iter().position(|&b| b == b'\n') {
        let nl = i + p;
        match input.get(nl + 1..)? {
            [b'\n', ..] => return Some(nl + 2),
            [b'\r', b'\n', ..] => return Some(nl + 3),
            [b'\r'] | [] => return None,
            _ => i = nl + 1,
        }
    }
    None
}

/// A head that has not ended yet but is already over a limit.
fn oversized_partial_head(head: &[u8]) -> Option<Refusal> {
    let line_end = head.iter().position(|&b| b == b'\n');
    let line = &head[..line_end.unwrap_or(head.len())];
    // The target runs from the first space to the last (to the end while the line goes on).
    let target = match (line.iter().position(|&b| b == b' '), line_end) {
        (Some(first), None) => line.len() - first - 1,
        (Some(first), Some(_)) => line
            .iter()
            .rposition(|&b| b == b' ')
            .map_or(0, |last| last.saturating_sub(first + 1)),
        (None, _) => 0,
    };
    if target > MAX_TARGET_BYTES {
        return Some(target_too_long());
    }
    (head.len() > MAX_HEAD_BYTES).then(head_too_large)
}

fn target_too_long() -> Refusal {
    Refusal {
        kind: RefusalKind::TargetTooLong,
        message: format!("request target longer than {MAX_TARGET_BYTES} bytes"),
    }
}

fn head_too_large() -> Refusal {
    Refusal {
        kind: RefusalKind::HeadTooLarge,
        message: format!(
            "request head larger than {MAX_HEAD_BYTES} bytes or with more than {MAX_HEADERS} header fields"
        ),
    }
}

/// Checks a whole head (up to and including its blank line); returns its length and the framing of the
/// body that follows it.
fn check_complete_head(bytes: &[u8]) -> Result<(usize, State), Refusal> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut fields);
    let len = match request.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return Err(Refusal::malformed("malformed request head"));
        }
        Err(httparse::Error::TooManyHeaders) => return Err(head_too_large()),
        Err(httparse::Error::Token) if request.method.is_none() => {
            return Err(Refusal::malformed("malformed request line: invalid method"));
        }
        Err(httparse::Error::Token) => {
            return Err(Refusal::malformed(
                "malformed request line: invalid request target",
            ));
        }
        Err(e) => return Err(Refusal::malformed(format!("malformed request head: {e}"))),
    };
    if len > MAX_HEAD_BYTES {
        return Err(head_too_large());
    }
    let (Some(method), Some(target), Some(version)) =
        (request.method, request.path, request.version)
    else {
        return Err(Refusal::malformed("malformed request line"));
    };
    if target.len() > MAX_TARGET_BYTES {
        return Err(target_too_long());
    }
    if Method::from_bytes(method.as_bytes()).is_err() {
        return Err(Refusal::malformed(format!(
            "malformed request line: invalid method {method:?}"
        )));
    }
    if Uri::try_from(target).is_err() {
        return Err(Refusal::malformed(
            "malformed request line: invalid request target",
        ));
    }
    let mut transfer_encoding = None;
    let mut content_length = None;
    for field in request.headers.iter() {
        if field.name.eq_ignore_ascii_case("transfer-encoding") {
            if transfer_encoding.is_some() {
                return Err(Refusal::malformed(
                    "more than one Transfer-Encoding header: only a single `Transfer-Encoding: chunked` is accepted",
                ));
            }
            transfer_encoding = Some(field.value);
        } else if field.name.eq_ignore_ascii_case("content-length") {
            let length = parse_content_length(field.value)?;
            if content_length.is_some_and(|previous| previous != length) {
                return Err(Refusal::malformed(
                    "Content-Length headers with different values",
                ));
            }
            content_length = Some(length);
        }
    }
    let body = match (transfer_encoding, content_length) {
        (Some(_), Some(_)) => {
            return Err(Refusal::malformed(
                "a request may not carry both Transfer-Encoding and Content-Length",
            ));
        }
        (Some(value), None) => {
            let coding = String::from_utf8_lossy(value);
            if !coding.trim().eq_ignore_ascii_case("chunked") {
                return Err(Refusal::malformed(format!(
                    "Transfer-Encoding {:?} is not supported: only `chunked` is accepted",
                    coding.trim()
                )));
            }
            if version == 0 {
                return Err(Refusal::malformed(
                    "Transfer-Encoding is not allowed in an HTTP/1.0 request",
                ));
            }
            State::Chunked(Chunked::default())
        }
        (None, Some(length)) if length > 0 => State::Length(length),
        (None, _) => State::Head,
    };
    Ok((len, body))
}

/// One `Content-Length` value: decimal digits only (no sign, no list), as hyper requires.
fn parse_content_length(value: &[u8]) -> Result<u64, Refusal> {
    let invalid = || {
        Refusal::malformed(format!(
            "invalid Content-Length {:?}",
            String::from_utf8_lossy(value)
        ))
    };
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(invalid());
    }
    // Parsing digits cannot fail but by overflow; hyper takes no length above u64::MAX - 2.
    std::str::from_utf8(value)
        .ok()
        .and_then(|digits| digits.parse::<u64>().ok())
        .filter(|&n| n < u64::MAX - 2)
        .ok_or_else(invalid)
}

/// A chunked body being scanned: the steps of hyper's chunked decoder, so that it ends (or fails) on the
/// same byte as hyper's.
#[derive(Debug, Default)]
struct Chunked {
    step: ChunkStep,
    /// Bytes of the current chunk's data left (while in `Data`), or its size being read.
    size: u64,
    extension_bytes: u64,
    trailer_bytes: usize,
    trailer_fields: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkStep {
    /// The first hex digit of a chunk size.
    #[default]
    Start,
    Size,
    /// Spaces after the size.
    SizeSpace,
    Extension,
    /// The line feed ending the size line.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// After the last chunk: a trailer field or the final CRLF.
    EndCr,
    Trailer,
    TrailerLf,
    EndLf,
}

impl Chunked {
    /// Scans `input`; returns the bytes that belong to the body and whether the body ended with them.
    fn scan(&mut self, input: &[u8]) -> Result<(usize, bool), String> {
        use ChunkStep::*;
        let mut i = 0;
        while i < input.len() {
            if self.step == Data {
                let n =
                    usize::try_from(self.size).map_or(input.len() - i, |s| s.min(input.len() - i));
                i += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.step = DataCr;
                }
                continue;
            }
            let byte = input[i];
            i += 1;
            self.step = match (self.step, byte) {
                (Start | Size, _) if byte.is_ascii_hexdigit() => {
                    let digit = u64::from((byte as char).to_digit(16).unwrap_or(0));
                    self.size = self
                        .size
                        .checked_mul(16)
                        .and_then(|s| s.checked_add(digit))
                        .ok_or("chunk size overflows")?;
                    Size
                }
                (Start, _) => return Err("invalid chunk size line: missing size digit".into()),
                (Size | SizeSpace, b'\t' | b' ') => SizeSpace,
                (Size | SizeSpace, b';') => Extension,
                (Size | SizeSpace, b'\r') => SizeLf,
                (Size | SizeSpace, _) => return Err("invalid chunk size line".into()),
                (Extension, b'\r') => SizeLf,
                (Extension, b'\n') => return Err("chunk extension contains a line feed".into()),
                (Extension, _) => {
                    self.extension_bytes += 1;
                    if self.extension_bytes >= MAX_CHUNK_EXTENSION_BYTES {
                        return Err("chunk extensions over the limit".into());
                    }
                    Extension
                }
                (SizeLf, b'\n') if self.size == 0 => EndCr,
                (SizeLf, b'\n') => Data,
                (SizeLf, _) => return Err("invalid chunk size line ending".into()),
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => Start,
                (DataCr | DataLf, _) => return Err("chunk data not followed by CRLF".into()),
                (EndCr, b'\r') => EndLf,
                (EndCr | Trailer, _) => {
                    self.trailer_bytes += 1;
                    if self.trailer_bytes > MAX_TRAILER_BYTES {
                        return Err("chunk trailers over the size limit".into());
                    }
                    if byte == b'\r' { TrailerLf } else { Trailer }
                }
                (TrailerLf, b'\n') => {
                    self.trailer_fields += 1;
                    if self.trailer_fields > MAX_HEADERS {
                        return Err("too many chunk trailer fields".into());
                    }
                    EndCr
                }
                (TrailerLf, _) => return Err("chunk trailer not ended by CRLF".into()),
                (EndLf, b'\n') => return Ok((i, true)),
                (EndLf, _) => return Err("chunked body not ended by CRLF".into()),
                // Data is consumed in bulk above.
                (Data, _) => Data,
            };
        }
        Ok((i, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` whole, passing what may pass, until a verdict other than a pass.
    fn run(framer: &mut Framer, mut input: &[u8]) -> Vec<Verdict> {
        let mut verdicts = Vec::new();
        loop {
            let verdict = framer.check(input);
            let passed = match &verdict {
                Verdict::Head(n) | Verdict::Body(n) => *n,
                _ => {
                    verdicts.push(verdict);
                    return verdicts;
                }
            };
            verdicts.push(verdict);
            input = &input[passed..];
        }
    }

    #[test]
    fn pipelined_requests_are_split_where_their_bodies_end() {
        let mut framer = Framer::default();
        let first = b"POST /api/v1/write HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
        let second = b"POST /w HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let chunks = b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n";
        let third = b"\r\nGET /api/v1/health HTTP/1.1\r\n\r\n";
        let input = [&first[..], b"hello", &second[..], &chunks[..], &third[..]].concat();
        assert_eq!(
            run(&mut framer, &input),
            vec![
                Verdict::Head(first.len()),
                Verdict::Body(5),
                Verdict::Head(second.len()),
                Verdict::Body(chunks.len()),
                Verdict::Head(third.len()),
                Verdict::NeedMore,
            ]
        );
        assert!(framer.awaiting_head());
    }

    #[test]
    fn a_head_arriving_byte_by_byte_passes_once_whole() {
        let head = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
        let mut framer = Framer::default();
        for end in 1..head.len() {
            assert_eq!(framer.check(&head[..end]), Verdict::NeedMore, "{end}");
        }
        assert_eq!(framer.check(head), Verdict::Head(head.len()));
    }

    #[test]
    fn a_chunked_body_arriving_byte_by_byte_ends_on_its_last_byte() {
        let body = b"a\r\n0123456789\r\n0\r\n\r\n";
        let mut framer = Framer::default();
        let head = b"POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n";
        assert_eq!(framer.check(head), Verdict::Head(head.len()));
        for (i, byte) in body.iter().enumerate() {
            assert_eq!(framer.check(&[*byte]), Verdict::Body(1), "byte {i}");
        }
        assert!(framer.awaiting_head());
    }

    fn refusal(head: &[u8]) -> Refusal {
        match Framer::default().check(head) {
            Verdict::Refused(refusal) => refusal,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn ambiguous_body_framing_is_refused() {
        let both =
            refusal(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(both.kind, RefusalKind::Malformed);
        assert!(
            both.message
                .contains("both Transfer-Encoding and Content-Length")
        );
        for coding in ["gzip, chunked", "gzip", "chunked, chunked", "identity"] {
            let head = format!("POST / HTTP/1.1\r\nTransfer-Encoding: {coding}\r\n\r\n");
            let r = refusal(head.as_bytes());
            assert!(r.message.contains("only `chunked`"), "{coding}: {r:?}");
        }
        let twice = refusal(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        assert!(twice.message.contains("more than one"), "{twice:?}");
        let old = refusal(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert!(old.message.contains("HTTP/1.0"), "{old:?}");
        for length in ["-1", "+4", "4, 4", "", "0x10", "18446744073709551615"] {
            let head = format!("POST / HTTP/1.1\r\nContent-Length: {length}\r\n\r\n");
            let r = refusal(head.as_bytes());
            assert!(r.message.contains("Content-Length"), "{length:?}: {r:?}");
        }
        let differing =
            refusal(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n");
        assert!(differing.message.contains("different values"));
    }

    #[test]
    fn repeated_equal_content_lengths_frame_the_body() {
        let head = b"POST / HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n";
        let mut framer = Framer::default();
        assert_eq!(
            run(&mut framer, &[&head[..], b"okGET"].concat()),
            vec![
                Verdict::Head(head.len()),
                Verdict::Body(2),
                Verdict::NeedMore
            ]
        );
    }

    #[test]
    fn malformed_heads_are_refused_as_bad_requests() {
        for head in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nbad header\r\n\r\n",
            b"GET / HTTP/1.1\r\nX-A: \x01\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2.0\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        ] {
            let r = refusal(head);
            assert_eq!(r.kind, RefusalKind::Malformed, "{head:?}: {r:?}");
        }
    }

    #[test]
    fn oversized_heads_are_refused_before_they_end() {
        let long_target = format!("GET /{}", "a".repeat(MAX_TARGET_BYTES + 1));
        assert_eq!(
            refusal(long_target.as_bytes()).kind,
            RefusalKind::TargetTooLong
        );
        let ended = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(MAX_TARGET_BYTES));
        assert_eq!(refusal(ended.as_bytes()).kind, RefusalKind::TargetTooLong);

        let mut big = b"GET / HTTP/1.1\r\n".to_vec();
        while big.len() <= MAX_HEAD_BYTES {
            big.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(refusal(&big).kind, RefusalKind::HeadTooLarge);
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        let head = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(refusal(head.as_bytes()).kind, RefusalKind::HeadTooLarge);
    }

    #[test]
    fn broken_chunked_framing_ends_the_connection() {
        let mut framer = Framer::default();
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(framer.check(head), Verdict::Head(head.len()));
        assert!(matches!(framer.check(b"zz\r\n"), Verdict::Broken(_)));
        assert!(matches!(
            framer.check(b"GET / HTTP/1.1\r\n\r\n"),
            Verdict::Broken(_)
        ));

        let mut framer = Framer::default();
        assert_eq!(framer.check(head), Verdict::Head(head.len()));
        assert!(matches!(framer.check(b"3\r\nabcX"), Verdict::Broken(_)));
    }
}
