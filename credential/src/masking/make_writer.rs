//! [`MaskingMakeWriter`]: a `tracing-subscriber` writer maker that masks every event.

use tracing_subscriber::fmt::MakeWriter;

use super::{Masker, MaskingWriter};

/// Masks every event a `tracing-subscriber` formatter writes through it; made by
/// [`Masker::make_writer`]. Each event is written through its own [`MaskingWriter`], so each is
/// masked whole.
///
/// ```
/// use credential::SecretString;
/// use credential::masking::Masker;
///
/// let masker = Masker::new();
/// masker.add(&SecretString::from("s3cr3t-token"));
/// let subscriber = tracing_subscriber::fmt().with_writer(masker.make_writer(std::io::stderr)).finish();
/// tracing::subscriber::with_default(subscriber, || {
///     tracing::info!(url = "https://api.example.com/?token=s3cr3t-token", "fetching");
/// });
/// ```
#[derive(Debug, Clone)]
pub struct MaskingMakeWriter<M> {
    masker: Masker,
    inner: M,
}

impl<M> MaskingMakeWriter<M> {
    pub(crate) fn new(masker: Masker, inner: M) -> Self {
        Self { masker, inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MaskingMakeWriter<M> {
    type Writer = MaskingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        self.masker.writer(self.inner.make_writer())
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        self.masker.writer(self.inner.make_writer_for(meta))
    }
}
