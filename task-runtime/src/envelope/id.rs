//! Fresh call ids: random (version 4) UUIDs from the operating system's
//! random source, drawn for 64 ids at a time. `uuid::Uuid::new_v4` asks
//! the kernel once per id (a `getrandom` system call); a call path that
//! sends thousands of calls a second pays that on every one.
//!
//! A call sent with no pending item (the worker's `begin` writes its first
//! one) gets a *dated* id instead: a version-8 UUID (RFC 9562, section 5.8)
//! laid out as version 7 is, its first 48 bits the send time in epoch
//! milliseconds and the other 74 random. Its id alone tells a poll that
//! finds no item that the call was sent, and when: it reads `pending`
//! until Lambda can no longer deliver it (`store::not_yet_begun`), and a
//! cancel can still reach it (`cancel`). Ids a caller chooses may not be
//! version-8 UUIDs (`dispatch::check_id`), so no other id reads so.

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
    let uuid = uuid::Builder::from_random_bytes(random_16()).into_uuid();
    uuid.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
}

/// A dated id for a call sent at `now_ms` with no pending item: a
/// version-8 UUID whose first 48 bits are `now_ms` (see the module docs).
pub(crate) fn new_dated_id(now_ms: u64) -> String {
    let mut bytes = random_16();
    bytes[..6].copy_from_slice(&now_ms.to_be_bytes()[2..]);
    let uuid = uuid::Builder::from_custom_bytes(bytes).into_uuid();
    uuid.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()).to_owned()
}

/// When a dated id's call was sent, epoch ms; `None` for any other id
/// (a version-4 UUID, a name, a UUID written in another form).
pub(crate) fn dated_at(id: &str) -> Option<u64> {
    if !is_dated(id) {
        return None;
    }
    let uuid = uuid::Uuid::parse_str(id).ok()?;
    let mut ms = [0u8; 8];
    ms[2..].copy_from_slice(&uuid.as_bytes()[..6]);
    Some(u64::from_be_bytes(ms))
}

/// Whether `id` is a version-8 UUID, hyphenated and lowercase, as
/// [`new_dated_id`] writes them.
pub(crate) fn is_dated(id: &str) -> bool {
    id.len() == 36
        && uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version() == Some(uuid::Version::Custom) && u.get_variant() == uuid::Variant::RFC4122)
        && id.bytes().all(|b| !b.is_ascii_uppercase())
}

/// 16 fresh random bytes from this thread's batch.
fn random_16() -> [u8; 16] {
    POOL.with_borrow_mut(|pool| {
        if pool.next == BATCH {
            getrandom::fill(&mut pool.bytes).expect("the operating system's random source");
            pool.next = 0;
        }
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&pool.bytes[pool.next * 16..][..16]);
        pool.next += 1;
        bytes
    })
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
    fn a_dated_id_carries_its_send_time_and_no_other_id_reads_as_dated() {
        let now = 1_796_000_000_123;
        let id = new_dated_id(now);
        let parsed = uuid::Uuid::parse_str(&id).expect("a UUID");
        assert_eq!(parsed.get_version(), Some(uuid::Version::Custom), "{id}");
        assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122, "{id}");
        assert_eq!(dated_at(&id), Some(now));
        assert_ne!(new_dated_id(now), id, "random bits");
        // Millisecond order is id order, as with version 7.
        assert!(new_dated_id(now + 1) > id);
        assert_eq!(dated_at(&new_id()), None, "a version-4 id");
        assert_eq!(dated_at(&id.to_uppercase()), None, "another form of it");
        assert_eq!(dated_at(&id.replace('-', "")), None, "another form of it");
        for other in ["order-7", "", "group:g:1", "01890a5d-ac96-774b-bcce-b302099a8057"] {
            assert_eq!(dated_at(other), None, "{other:?}");
        }
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
