//! [`AsyncMaskingWriter`]: a tokio `AsyncWrite` that masks what passes through it.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

use super::Masker;
use super::buffer::MaskingBuffer;

/// Masks every secret its [`Masker`] knows in what is written through it, then writes it to the
/// inner writer; made by [`Masker::async_writer`]. It masks as [`MaskingWriter`] does, across
/// write boundaries; `flush` never writes what is held back, and `shutdown` writes everything,
/// masked. Dropped without `shutdown`, it loses what it held back (at most one byte fewer than
/// the longest form of a known secret).
///
/// [`MaskingWriter`]: super::MaskingWriter
///
/// ```
/// use credential::SecretString;
/// use credential::masking::Masker;
/// use tokio::io::AsyncWriteExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let masker = Masker::new();
/// masker.add(&SecretString::from("s3cr3t-token"));
/// let mut log = masker.async_writer(Vec::new());
/// log.write_all(b"child says s3cr3t-token\n").await?;
/// log.shutdown().await?;
/// assert_eq!(log.get_ref(), b"child says ***\n");
/// # Ok(())
/// # }
/// ```
pub struct AsyncMaskingWriter<W> {
    buffer: MaskingBuffer,
    inner: W,
    finished: bool,
}

impl<W: AsyncWrite> AsyncMaskingWriter<W> {
    pub(crate) fn new(masker: Masker, inner: W) -> Self {
        Self { buffer: MaskingBuffer::new(masker), inner, finished: false }
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer, once shut down; before, what it holds back would be lost.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: AsyncWrite + Unpin> AsyncMaskingWriter<W> {
    /// Writes the masked text that is pending.
    fn poll_write_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.buffer.pending().is_empty() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, self.buffer.pending())) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(count) => self.buffer.advance(count),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for AsyncMaskingWriter<W> {
    /// Takes all of `buf` once what was pending is written, as `MaskingWriter::write` does.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(Err(io::Error::other("write after shutdown")));
        }
        ready!(this.poll_write_pending(cx))?;
        this.buffer.accept(buf);
        // Written now if the inner writer is ready; otherwise by the next call.
        let _ = this.poll_write_pending(cx);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_write_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.finished {
            this.buffer.finish();
            this.finished = true;
        }
        ready!(this.poll_write_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<W: fmt::Debug> fmt::Debug for AsyncMaskingWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMaskingWriter")
            .field("inner", &self.inner)
            .field("held", &self.buffer.held())
            .finish_non_exhaustive()
    }
}
