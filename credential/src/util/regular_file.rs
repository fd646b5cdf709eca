//! Opening the files the library reads and writes so that a hostile one cannot hang it: a FIFO
//! put where a key file, record or audit trail should be would block `open` or `read` forever,
//! and a device would feed it endless bytes.
//!
//! Every such file is opened with `O_NONBLOCK` (opening a FIFO or a device then returns at once)
//! and, where a link would let someone else's file stand in for ours, `O_NOFOLLOW`; what was
//! opened is then checked on the descriptor itself (`fstat`), never by a `stat` of the path
//! before the open, which a swap could outrun. `O_NONBLOCK` changes nothing for a regular file.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use zeroize::Zeroizing;

/// Whether a link at the path's last component is followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Links {
    /// Followed: the path may name the file through a link (a key file an operator linked in).
    Follow,
    /// Refused with `ELOOP`: a file the library keeps itself (records, trails, logs).
    Refuse,
}

/// Opens `path` with `options`, without blocking and as `links` says, and checks that what was
/// opened is a regular file.
///
/// # Errors
/// The open's own error (`ELOOP` for a refused link, `ENXIO` for a FIFO without a reader opened
/// for writing or a socket), or [`io::ErrorKind::InvalidInput`] naming what the path is instead of
/// a regular file.
pub(crate) fn open(path: &Path, options: &mut OpenOptions, links: Links) -> io::Result<File> {
    let nofollow = match links {
        Links::Follow => 0,
        Links::Refuse => libc::O_NOFOLLOW,
    };
    let file = options.custom_flags(libc::O_NONBLOCK | nofollow).open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    let what = if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    };
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("is {what}, not a regular file")))
}

/// Opens the directory `path` without blocking; anything else than a directory there (a FIFO,
/// say) is an error at once. A link is followed: the directory is the one its owner named.
///
/// # Errors
/// The open's own error: `ENOTDIR` for anything that is not a directory.
#[cfg(feature = "file")]
pub(crate) fn open_dir(path: &Path) -> io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_DIRECTORY).open(path)
}

/// The contents of the regular file at `path`, read as `links` says, at most `limit` bytes (a
/// larger file is an error, not a partial read), in a buffer wiped when dropped.
///
/// # Errors
/// As [`open`], or [`io::ErrorKind::InvalidData`] for a file larger than `limit`.
pub(crate) fn read(path: &Path, links: Links, limit: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let file = open(path, OpenOptions::new().read(true), links)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Err(too_large(limit));
    }
    let mut contents =
        Zeroizing::new(Vec::with_capacity(usize::try_from(len).unwrap_or(0).saturating_add(1)));
    // One byte more than allowed tells a file that grew past the limit since it was measured.
    file.take(limit.saturating_add(1)).read_to_end(&mut contents)?;
    if contents.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(contents)
}

fn too_large(limit: u64) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("is larger than {limit} bytes"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::process::Command;

    use super::*;
    use crate::util::scratch::ScratchDir as Scratch;

    fn mkfifo(path: &Path) {
        assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
    }

    #[test]
    fn fifos_sockets_devices_and_directories_fail_at_once() {
        let scratch = Scratch::new("kinds");
        let fifo = scratch.join("fifo");
        mkfifo(&fifo);
        let socket = scratch.join("socket");
        let _listener = UnixListener::bind(&socket).unwrap();
        for (path, says) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a device"),
            (&*scratch, "a directory"),
        ] {
            let error = read(path, Links::Follow, 1024).unwrap_err();
            assert!(error.to_string().contains(says), "{}: {error}", path.display());
        }
        // Opening a socket fails in the kernel already.
        assert!(read(&socket, Links::Follow, 1024).is_err());
        // Appending to a FIFO nobody reads does not wait for a reader either.
        let append = open(&fifo, OpenOptions::new().append(true), Links::Refuse);
        assert!(append.is_err());
        #[cfg(feature = "file")]
        {
            assert!(open_dir(&fifo).is_err());
            assert!(open_dir(&scratch).is_ok());
        }
    }

    #[test]
    fn links_are_followed_only_when_asked_and_sizes_are_bounded() {
        let scratch = Scratch::new("links");
        let target = scratch.join("target");
        std::fs::write(&target, b"0123456789").unwrap();
        let link = scratch.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(&**read(&link, Links::Follow, 10).unwrap(), b"0123456789");
        assert!(read(&link, Links::Refuse, 10).is_err());
        let error = read(&target, Links::Refuse, 9).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
    }
}
