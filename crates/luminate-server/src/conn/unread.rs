//! Responses sent before the request body was read to its end carry `connection: close`.
//!
//! A request refused before its handler reads the body — no token, a rate limit, a full queue, an
//! over-limit body drained only up to the cap — leaves the rest of the body unread on the connection,
//! and hyper then closes the connection after the response rather than read it. It does not say so:
//! without the header, a pooling client (reqwest, Go's `net/http`, Prometheus' remote write) sends its
//! next request on that connection and gets a reset or "connection closed before message completed",
//! an error about its *next* request. With `connection: close` it opens a new connection instead.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderValue, Request, header};
use axum::response::Response;
use hyper::body::{Frame, Incoming, SizeHint};

/// Whether a request's body was read to its end (or had none).
#[derive(Debug, Clone)]
pub(super) struct BodyRead(Arc<AtomicBool>);

impl BodyRead {
    /// Adds `connection: close` to `response` unless the body was read to its end.
    pub(super) fn close_if_unread(&self, mut response: Response) -> Response {
        if !self.0.load(Ordering::Acquire) {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The request with its body tracked, and what tells whether it was read to its end.
pub(super) fn track(request: Request<Incoming>) -> (Request<Body>, BodyRead) {
    let read = BodyRead(Arc::new(AtomicBool::new(request.body().is_end_stream())));
    let tracked = read.clone();
    let request = request.map(|inner| {
        Body::new(Tracked {
            inner,
            read: tracked,
        })
    });
    (request, read)
}

/// A request body that marks [`BodyRead`] when its last frame has been read.
struct Tracked {
    inner: Incoming,
    read: BodyRead,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        // The end: no more frames, or (a `content-length` body) its last byte just read, which a
        // reader that stops at the length it was told never polls past.
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.0.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
