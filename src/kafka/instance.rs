//! One `group.instance.id` per process on a host.
//!
//! Two consumers with the same `group.instance.id` in one group fence each
//! other: under the classic protocol the broker fences the older member,
//! under KIP-848 it refuses the newer one — either way one of them stops
//! consuming for good. The default id is `<host>-<pipeline>`, so two logpipe
//! processes running the same pipeline on one host (two indexers sharing
//! the load, or a test's fleet) would collide. Each process therefore
//! claims its id on the host first, as an abstract Unix socket named after
//! the group and the id: the kernel releases it when the process ends, even
//! by `kill -9`, so a restarted process gets its own id back at once.
//!
//! A default id already held gets the first free `-2`, `-3`, … suffix (a
//! process that restarts beside another takes back the id it had, since
//! its neighbour still holds its own); an id the user chose that is held is
//! an error, since a suffix would not be the id they asked for.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};

use super::InstanceId;

/// The most processes of one pipeline on one host that get a default id.
const MAX_SUFFIX: u32 = 64;

/// Held while the consumer runs; dropping it releases the id on this host.
#[derive(Debug)]
pub struct Claim {
    pub id: String,
    _socket: UnixListener,
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("group_instance_id {id} of consumer group {group} is in use by another logpipe process on this host; two members with one id fence each other: give each process its own group_instance_id, or set static_membership = false")]
    InUse { group: String, id: String },
    #[error("group_instance_id {id} of consumer group {group} and the next {MAX_SUFFIX} suffixes are all in use on this host")]
    Exhausted { group: String, id: String },
    #[error("cannot claim group_instance_id {id} on this host: {source}")]
    Io {
        id: String,
        #[source]
        source: std::io::Error,
    },
}

/// Claims `wanted` (or, for a default id, the first free suffix of it) for
/// this process.
pub fn claim(group: &str, wanted: &InstanceId) -> Result<Claim, ClaimError> {
    let tries = if wanted.chosen { 1 } else { MAX_SUFFIX };
    for n in 1..=tries {
        let id = if n == 1 {
            wanted.id.clone()
        } else {
            format!("{}-{n}", wanted.id)
        };
        match bind(group, &id) {
            Ok(socket) => {
                return Ok(Claim {
                    id,
                    _socket: socket,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => continue,
            Err(source) => return Err(ClaimError::Io { id, source }),
        }
    }
    let (group, id) = (group.to_owned(), wanted.id.clone());
    Err(if wanted.chosen {
        ClaimError::InUse { group, id }
    } else {
        ClaimError::Exhausted { group, id }
    })
}

fn bind(group: &str, id: &str) -> std::io::Result<UnixListener> {
    // Abstract names are at most 107 bytes: long group and instance names
    // are hashed into it rather than cut (cut names could collide).
    let full = format!("logpipe/group-instance/{group}/{id}");
    let name = if full.len() <= 100 {
        full
    } else {
        format!(
            "logpipe/group-instance/{:016x}",
            xxhash_rust::xxh3::xxh3_64(full.as_bytes())
        )
    };
    let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
    UnixListener::bind_addr(&addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(id: &str, chosen: bool) -> InstanceId {
        InstanceId {
            id: id.to_owned(),
            chosen,
        }
    }

    #[test]
    fn a_default_id_held_here_gets_the_first_free_suffix_and_back_when_released() {
        let group = format!("claim-test-{}", fastrand::u64(..));
        let first = claim(&group, &id("h-p", false)).unwrap();
        let second = claim(&group, &id("h-p", false)).unwrap();
        let third = claim(&group, &id("h-p", false)).unwrap();
        assert_eq!(
            (first.id.as_str(), second.id.as_str(), third.id.as_str()),
            ("h-p", "h-p-2", "h-p-3")
        );
        drop(second);
        assert_eq!(claim(&group, &id("h-p", false)).unwrap().id, "h-p-2");
    }

    #[test]
    fn a_chosen_id_held_here_is_an_error_naming_group_and_id() {
        let group = format!("claim-test-{}", fastrand::u64(..));
        let _held = claim(&group, &id("mine", true)).unwrap();
        let err = claim(&group, &id("mine", true)).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("mine") && text.contains(&group), "{text}");
        // the same id in another group is another member
        assert!(claim(&format!("{group}-b"), &id("mine", true)).is_ok());
    }

    #[test]
    fn long_names_are_claimed_too() {
        let group = "g".repeat(200);
        let wanted = id(&"i".repeat(240), false);
        let a = claim(&group, &wanted).unwrap();
        let b = claim(&group, &wanted).unwrap();
        assert_ne!(a.id, b.id);
    }
}
