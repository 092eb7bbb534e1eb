//! Fresh call ids: random (version 4) UUIDs from the operating system's
//! random source, drawn for 64 ids at a time. `uuid::Uuid::new_v4` asks
//! the kernel once per id (a `getrandom` system call); a call path that
//! sends thousands of calls a second pays that on every one.

use std::cell::RefCell;

/// Ids drawn from one read of the random source.
const BATCH: usize = 64;

struct Pool {
    bytes: [u8; 16 * BATCH],
    /// The next unused id in `bytes`; `BATCH` when all are used.
    next: usize,
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { bytes: [0; 16 * BATCH], next: BATCH }) };
}

/// A random UUID v4, hyphenated and lowercase: the same ids as
/// `uuid::Uuid::new_v4().to_string()`.
///
/// Each id's 16 bytes are used once. Panics only if the operating system
/// cannot give random bytes, as `uuid::Uuid::new_v4` does.
pub(crate) fn new_id() -> String {
    let bytes = POOL.with_borrow_mut(|pool| {
        if pool.next == BATCH {
            getrandom::fill(&mut pool.bytes).expect("the operating system's random source");
            pool.next = 0;
        }
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&pool.bytes[pool.next * 16..][..16]);
        pool.next += 1;
        bytes
    });
    let uuid = uuid::Builder::from_random_bytes(bytes).into_uuid();
    uuid.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_4_uuids_and_never_repeat() {
        let ids: Vec<String> = (0..3 * BATCH + 5).map(|_| new_id()).collect();
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version(), Some(uuid::Version::Random), "{id}");
            assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
            assert_eq!(id, &parsed.hyphenated().to_string(), "hyphenated, lowercase");
        }
        let distinct: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len(), "an id repeated");
    }

    #[test]
    fn each_id_is_its_own_16_bytes_of_the_batch() {
        // A fresh batch on this test's thread.
        POOL.with_borrow_mut(|pool| pool.next = BATCH);
        let ids: Vec<uuid::Uuid> = (0..BATCH).map(|_| uuid::Uuid::parse_str(&new_id()).expect("a UUID")).collect();
        let batch = POOL.with_borrow(|pool| pool.bytes);
        for (i, id) in ids.iter().enumerate() {
            let own: [u8; 16] = batch[i * 16..(i + 1) * 16].try_into().expect("16 bytes");
            assert_eq!(*id, uuid::Builder::from_random_bytes(own).into_uuid(), "id {i} does not use bytes {}..{}", i * 16, (i + 1) * 16);
        }
    }

    #[test]
    fn each_thread_draws_its_own_ids() {
        let other: Vec<String> = std::thread::spawn(|| (0..BATCH).map(|_| new_id()).collect()).join().expect("thread");
        let here: std::collections::BTreeSet<String> = (0..BATCH).map(|_| new_id()).collect();
        assert!(other.iter().all(|id| !here.contains(id)));
    }
}
