//! [`ResponseBody`]: a stored body, an untouched inner body, or an inner body that
//! is copied into the cache as it streams to the client.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::backend::BoxFuture;
use crate::entry::Entry;
use crate::key::PrimaryKey;
use crate::layer::Shared;
use crate::store::inflight::Lead;

pin_project! {
    /// The body of a response that went through a
    /// [`CacheService`](crate::CacheService).
    ///
    /// A hit carries the stored bytes (with an exact size hint, so servers can send
    /// `Content-Length`). A response that will not be stored is the inner body,
    /// untouched. A response that will be stored streams to the client frame by
    /// frame while a copy is collected; the copy is stored only when the stream
    /// ends cleanly within the size limit, and only then is the end reported.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Cached { data: Option<Bytes> },
        Passthrough { #[pin] inner: B },
        // Boxed: a hit's body (and response) stays small to move.
        Tee { #[pin] inner: B, tee: Box<Tee> },
    }
}

struct Tee {
    /// `None` once the copy is abandoned (too large, error, trailers) or handed on.
    collector: Option<Collector>,
    /// The store in progress; the stream's last step waits for it.
    finishing: Option<BoxFuture<'static, ()>>,
    /// The frame (or the end, `Some(None)`) held back until `finishing` is done.
    held: Option<Option<Frame<Bytes>>>,
}

impl<B> ResponseBody<B> {
    pub(crate) fn cached(data: Bytes) -> Self {
        Self {
            kind: Kind::Cached {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    pub(crate) fn empty() -> Self {
        Self::cached(Bytes::new())
    }

    pub(crate) fn passthrough(inner: B) -> Self {
        Self {
            kind: Kind::Passthrough { inner },
        }
    }

    /// Whether reading this body to its end stores a copy.
    pub(crate) fn is_collecting(&self) -> bool {
        matches!(&self.kind, Kind::Tee { tee, .. } if tee.collector.is_some())
    }

    pub(crate) fn tee(inner: B, collector: Collector) -> Self {
        Self {
            kind: Kind::Tee {
                inner,
                tee: Box::new(Tee {
                    collector: Some(collector),
                    finishing: None,
                    held: None,
                }),
            },
        }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Cached { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            KindProj::Passthrough { inner } => inner.poll_frame(cx),
            KindProj::Tee { mut inner, tee } => loop {
                if let Some(store) = tee.finishing.as_mut() {
                    ready!(store.as_mut().poll(cx));
                    tee.finishing = None;
                    return Poll::Ready(tee.held.take().flatten().map(Ok));
                }
                let frame = match ready!(inner.as_mut().poll_frame(cx)) {
                    Some(Ok(frame)) => frame,
                    Some(Err(error)) => {
                        tee.collector = None;
                        return Poll::Ready(Some(Err(error)));
                    }
                    None => {
                        if tee.start_store() {
                            tee.held = Some(None);
                            continue;
                        }
                        return Poll::Ready(None);
                    }
                };
                if let Some(collector) = tee.collector.as_mut() {
                    // Trailers are not stored: a response with them is not cached.
                    let keep = frame.data_ref().is_some_and(|d| collector.push(d));
                    if !keep {
                        tee.collector = None;
                    }
                }
                // Servers may stop polling once the inner body says it has ended, or
                // once `Content-Length` bytes are out, so the store cannot wait for a
                // final `None` that may never be asked for.
                let complete = tee.collector.as_ref().is_some_and(|c| c.is_complete());
                if (complete || inner.is_end_stream()) && tee.start_store() {
                    tee.held = Some(Some(frame));
                    continue;
                }
                return Poll::Ready(Some(Ok(frame)));
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Cached { data } => data.is_none(),
            Kind::Passthrough { inner } => inner.is_end_stream(),
            // While a copy is pending the body must be polled once more to store it,
            // even when the inner body is already empty.
            Kind::Tee { inner, tee } => {
                inner.is_end_stream()
                    && tee.collector.is_none()
                    && tee.finishing.is_none()
                    && tee.held.is_none()
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Cached { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Kind::Passthrough { inner } | Kind::Tee { inner, .. } => inner.size_hint(),
        }
    }
}

impl Tee {
    /// Hands the collected copy to the store; `false` when there is nothing to store.
    fn start_store(&mut self) -> bool {
        self.finishing = self.collector.take().and_then(|c| c.finish());
        self.finishing.is_some()
    }
}

/// The copy of a body being collected for the store, with the entry it completes.
pub(crate) struct Collector {
    shared: Arc<Shared>,
    key: PrimaryKey,
    /// The entry, body still empty.
    entry: Entry,
    chunks: Vec<Bytes>,
    len: usize,
    /// `Content-Length` to check the body against (not for HEAD, whose body is empty).
    expected: Option<u64>,
    /// Followers of a coalesced miss wait on it: told `stored` once the insert is
    /// done; dropped unfinished (body failed, too large, abandoned), it lets
    /// them fetch their own.
    lead: Option<Lead>,
}

impl Collector {
    pub(crate) fn new(
        shared: Arc<Shared>,
        key: PrimaryKey,
        entry: Entry,
        expected: Option<u64>,
        lead: Option<Lead>,
    ) -> Self {
        Self {
            shared,
            key,
            entry,
            chunks: Vec::new(),
            len: 0,
            expected,
            lead,
        }
    }

    /// Adds a chunk (a reference-counted clone, no copy); `false` once the body
    /// has outgrown `max_body_size`.
    fn push(&mut self, data: &Bytes) -> bool {
        self.len = self.len.saturating_add(data.len());
        if self.len > self.shared.config.max_body_size {
            return false;
        }
        if !data.is_empty() {
            self.chunks.push(data.clone());
        }
        true
    }

    /// Whether the body has all the bytes its `Content-Length` declared.
    fn is_complete(&self) -> bool {
        self.expected == Some(self.len as u64)
    }

    /// The store operation, or `None` when the body does not match its
    /// `Content-Length` (a truncated response is never stored).
    pub(crate) fn finish(self) -> Option<BoxFuture<'static, ()>> {
        if self.expected.is_some_and(|n| n != self.len as u64) {
            return None;
        }
        let Collector {
            shared,
            key,
            mut entry,
            chunks,
            len,
            lead,
            ..
        } = self;
        // Always one fresh buffer: a chunk may be a slice of a much larger read
        // buffer (hyper's), which storing it as is would keep alive, unweighed.
        entry.content = entry.content.with_body(&chunks);
        Some(Box::pin(async move {
            shared.insert(&key, entry).await;
            shared.counters.stored(len);
            if let Some(lead) = lead {
                lead.stored();
            }
        }))
    }
}
