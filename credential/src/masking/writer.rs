//! [`MaskingWriter`]: an `io::Write` that masks what passes through it.

use std::fmt;
use std::io::{self, Write};

use super::Masker;
use super::buffer::MaskingBuffer;

/// Masks every secret its [`Masker`] knows in what is written through it, then writes it to the
/// inner writer; made by [`Masker::writer`].
///
/// A secret split across two writes is still masked: the writer holds back the last bytes written,
/// one fewer than the longest form of a known secret, until what follows shows whether they start
/// a secret. [`flush`](Write::flush) writes out what is final and never what is held back;
/// [`into_inner`](Self::into_inner) and dropping the writer write out everything, masked.
///
/// ```
/// use std::io::Write;
///
/// use credential::SecretString;
/// use credential::masking::Masker;
///
/// # fn main() -> std::io::Result<()> {
/// let masker = Masker::new();
/// masker.add(&SecretString::from("s3cr3t-token"));
/// let mut log = masker.writer(Vec::new());
/// write!(log, "connecting with s3cr3t-")?;
/// writeln!(log, "token")?;
/// assert_eq!(log.into_inner()?, b"connecting with ***\n");
/// # Ok(())
/// # }
/// ```
pub struct MaskingWriter<W: Write> {
    buffer: MaskingBuffer,
    /// `None` only once `into_inner` took it.
    inner: Option<W>,
}

impl<W: Write> MaskingWriter<W> {
    pub(crate) fn new(masker: Masker, inner: W) -> Self {
        Self { buffer: MaskingBuffer::new(masker), inner: Some(inner) }
    }

    /// Writes out what it holds back, masked, and returns the inner writer.
    ///
    /// # Errors
    /// The inner writer's error; what was not written is lost.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.finish()?;
        self.inner.take().ok_or_else(|| io::Error::other("the inner writer was taken"))
    }

    /// The inner writer.
    pub fn get_ref(&self) -> Option<&W> {
        self.inner.as_ref()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.buffer.finish();
        self.write_pending()?;
        self.inner.as_mut().map_or(Ok(()), Write::flush)
    }

    /// Writes the masked text that is pending.
    fn write_pending(&mut self) -> io::Result<()> {
        let Some(inner) = self.inner.as_mut() else { return Ok(()) };
        while !self.buffer.pending().is_empty() {
            match inner.write(self.buffer.pending()) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(count) => self.buffer.advance(count),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

impl<W: Write> Write for MaskingWriter<W> {
    /// Takes all of `buf` once what was pending is written: an error writing the pending text
    /// takes none of it; an error writing `buf`'s own text is reported by the next call.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_pending()?;
        self.buffer.accept(buf);
        let _reported_by_the_next_call = self.write_pending();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.write_pending()?;
        self.inner.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl<W: Write> Drop for MaskingWriter<W> {
    /// Writes out what it holds back, masked, ignoring errors (as `BufWriter` does).
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = self.finish();
        }
    }
}

impl<W: Write + fmt::Debug> fmt::Debug for MaskingWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaskingWriter")
            .field("inner", &self.inner)
            .field("held", &self.buffer.held())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    const CANARY: &str = "CANARY-writer-91c4e7";

    fn masker() -> Masker {
        let masker = Masker::new();
        masker.add(&SecretString::from(CANARY));
        masker
    }

    #[test]
    fn a_secret_split_at_any_point_is_masked() {
        let masker = masker();
        let text = format!("before {CANARY} after {CANARY}");
        for split in 0..=text.len() {
            let mut writer = masker.writer(Vec::new());
            writer.write_all(&text.as_bytes()[..split]).unwrap();
            writer.write_all(&text.as_bytes()[split..]).unwrap();
            assert_eq!(writer.into_inner().unwrap(), b"before *** after ***", "split at {split}");
        }
        // One byte at a time.
        let mut writer = masker.writer(Vec::new());
        for byte in text.as_bytes() {
            writer.write_all(std::slice::from_ref(byte)).unwrap();
        }
        assert_eq!(writer.into_inner().unwrap(), b"before *** after ***");
    }

    #[test]
    fn flush_never_writes_the_start_of_a_secret() {
        let masker = masker();
        let mut writer = masker.writer(Vec::new());
        let partial = &CANARY[..CANARY.len() - 1];
        write!(writer, "a line long enough to be final\nthen {partial}").unwrap();
        writer.flush().unwrap();
        let flushed = writer.get_ref().unwrap().clone();
        assert!(!String::from_utf8_lossy(&flushed).contains("CANARY"), "{flushed:?}");
        assert!(flushed.starts_with(b"a line long enough"));
        writer.write_all(b"7!").unwrap();
        assert_eq!(writer.into_inner().unwrap(), b"a line long enough to be final\nthen ***!");
    }

    #[test]
    fn text_without_a_secret_passes_byte_for_byte() {
        let masker = masker();
        let text: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let mut writer = masker.writer(Vec::new());
        for chunk in text.chunks(7) {
            writer.write_all(chunk).unwrap();
        }
        assert_eq!(writer.into_inner().unwrap(), text);
    }

    #[test]
    fn dropping_the_writer_writes_what_it_held_masked() {
        let masker = masker();
        let mut out = Vec::new();
        {
            let mut writer = masker.writer(&mut out);
            write!(writer, "tail {CANARY}").unwrap();
        }
        assert_eq!(out, b"tail ***");
    }

    #[test]
    fn an_error_of_the_inner_writer_is_reported_and_nothing_is_lost_or_written_twice() {
        use std::cell::Cell;
        use std::rc::Rc;

        /// Fails every write while `failing` is set.
        struct Flaky(Vec<u8>, Rc<Cell<bool>>);
        impl Write for Flaky {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.1.get() {
                    return Err(io::Error::other("disk full"));
                }
                self.0.extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let failing = Rc::new(Cell::new(true));
        let masker = masker();
        let mut writer = masker.writer(Flaky(Vec::new(), Rc::clone(&failing)));
        let first = b"a first line, long enough to be final at once\n";
        // Taken, and held as pending: the failure shows on the next call.
        writer.write_all(first).unwrap();
        assert!(writer.write_all(b"second\n").is_err());
        assert!(writer.flush().is_err());
        failing.set(false);
        writer.write_all(b"second\n").unwrap();
        let inner = writer.into_inner().unwrap();
        assert_eq!(inner.0, [&first[..], b"second\n"].concat());
    }
}
