//! File identity by content: a hash of the first bytes, as Filebeat's
//! `fingerprint` mode. Device and inode numbers are only a fast hint (device
//! numbers change across reboots, inodes are reused after deletion), except
//! for a file shorter than [`FINGERPRINT_BYTES`]: its prefix alone is too
//! weak, so it is identified by prefix and inode until it grows.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

/// How many leading bytes identify a file.
pub const FINGERPRINT_BYTES: usize = 1024;

/// The hash of a file's first `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    pub len: u32,
    pub hash: u128,
}

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Self {
        let bytes = &bytes[..bytes.len().min(FINGERPRINT_BYTES)];
        Fingerprint {
            len: bytes.len() as u32,
            hash: xxhash_rust::xxh3::xxh3_128(bytes),
        }
    }

    /// Whether this fingerprint covers the full `FINGERPRINT_BYTES`.
    pub fn is_complete(&self) -> bool {
        self.len as usize >= FINGERPRINT_BYTES
    }

    /// Whether `prefix` (the first bytes of a file, at least `self.len`
    /// long) starts with the bytes this fingerprint was taken of: the same
    /// file, possibly grown since.
    pub fn matches_prefix(&self, prefix: &[u8]) -> bool {
        let len = self.len as usize;
        prefix.len() >= len && xxhash_rust::xxh3::xxh3_128(&prefix[..len]) == self.hash
    }

    pub fn to_hex(&self) -> String {
        format!("{:032x}", self.hash)
    }
}

/// Reads the first bytes of a file, without moving its read position.
pub fn read_prefix(file: &File) -> io::Result<Vec<u8>> {
    let mut buf = vec![0; FINGERPRINT_BYTES];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Device and inode: cheap, but only a hint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Inode {
    pub dev: u64,
    pub ino: u64,
}

impl Inode {
    pub fn of(meta: &std::fs::Metadata) -> Self {
        Inode {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The identity of a file first seen with fingerprint `fp` on `inode`: the
/// hex fingerprint, with the inode number while it covers fewer than 1024
/// bytes (two short files with the same content are two files). It stays
/// the file's registry key and origin-id seed when the file grows; `logpipe
/// import --filebeat-registry` writes entries under it too.
pub fn identity_of(fp: Fingerprint, inode: Inode) -> String {
    if fp.is_complete() {
        fp.to_hex()
    } else {
        format!("{}-i{}", fp.to_hex(), inode.ino)
    }
}

/// The origin id of the line at `offset` of the file identified by
/// `identity` on `host`: the same however often the line is read, so it can
/// serve as the document id downstream.
pub fn origin_id(host: &str, identity: &str, offset: u64) -> crate::event::Str {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(host.as_bytes());
    hasher.update(&[0]);
    hasher.update(identity.as_bytes());
    hasher.update(&[0]);
    hasher.update(&offset.to_le_bytes());
    crate::event::line_id::hex_id(hasher.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grown_file_still_matches_its_short_fingerprint() {
        let short = Fingerprint::of(b"first line\n");
        assert!(!short.is_complete());
        assert!(short.matches_prefix(b"first line\nsecond line\n"));
        assert!(!short.matches_prefix(b"other content\n"));
        assert!(!short.matches_prefix(b"first"));
    }

    #[test]
    fn only_the_first_kilobyte_counts() {
        let mut a = vec![b'a'; 2000];
        let b = a.clone();
        a[1500] = b'z';
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        assert!(Fingerprint::of(&a).is_complete());
    }

    #[test]
    fn origin_ids_are_stable_and_distinct() {
        let id = origin_id("web1", "abc", 42);
        assert_eq!(id, origin_id("web1", "abc", 42));
        assert_eq!(id.len(), 32);
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        for part in [&b"web1"[..], &[0], b"abc", &[0], &42u64.to_le_bytes()] {
            hasher.update(part);
        }
        assert_eq!(id, format!("{:032x}", hasher.digest128()));
        assert_ne!(id, origin_id("web2", "abc", 42));
        assert_ne!(id, origin_id("web1", "abd", 42));
        assert_ne!(id, origin_id("web1", "abc", 43));
    }
}
