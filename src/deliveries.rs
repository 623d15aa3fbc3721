//! Delivery ids already accepted, so a forge's redelivery (or a retry after a
//! timeout) answers `duplicate` and deploys nothing — across restarts.
//!
//! Kept in memory (the newest [`CAPACITY`]) and appended to
//! `<state_dir>/deliveries`, one id a line, compacted when it doubles. The
//! append is not fsynced on the request path: the request file and run
//! record that an accepted delivery leaves carry its id too, and are read
//! back at start ([`Deliveries::remember`]), so a crash loses no id that matters.

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::fsutil;

/// How many ids are remembered.
pub const CAPACITY: usize = 10_000;

/// Longest id kept; GitHub's are 36-character UUIDs.
const MAX_ID: usize = 128;

struct Inner {
    set: HashSet<String>,
    order: VecDeque<String>,
    file: Option<File>,
    lines: usize,
}

/// The remembered delivery ids.
pub struct Deliveries {
    path: PathBuf,
    inner: Mutex<Inner>,
}

/// Whether a delivery id is new.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// Not seen before; now reserved until [`Deliveries::release`] or kept.
    New,
    /// Accepted before.
    Duplicate,
}

impl Deliveries {
    /// Loads `<state_dir>/deliveries`.
    pub fn open(state_dir: &Path) -> io::Result<Deliveries> {
        let path = state_dir.join("deliveries");
        let mut inner = Inner {
            set: HashSet::new(),
            order: VecDeque::new(),
            file: None,
            lines: 0,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                for id in text.lines().filter(|l| !l.is_empty()) {
                    inner.lines += 1;
                    insert(&mut inner, id);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Deliveries {
            path,
            inner: Mutex::new(inner),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remembers ids found elsewhere on disk (queued requests, run records).
    pub fn remember<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let mut inner = self.lock();
        for id in ids {
            if !id.is_empty() {
                insert(&mut inner, id);
            }
        }
    }

    /// Checks `id` and reserves it when new, atomically: of two identical
    /// deliveries arriving at once, one is new and one a duplicate.
    pub fn check(&self, id: &str) -> Seen {
        let id = clip(id);
        let mut inner = self.lock();
        if inner.set.contains(id) {
            Seen::Duplicate
        } else {
            insert(&mut inner, id);
            Seen::New
        }
    }

    /// Forgets a reserved id whose request could not be recorded, so the
    /// forge's retry is accepted.
    pub fn release(&self, id: &str) {
        let id = clip(id);
        let mut inner = self.lock();
        if inner.set.remove(id) {
            inner.order.retain(|x| x != id);
        }
    }

    /// Appends an accepted id to the file. Blocking (a small write).
    pub fn keep(&self, id: &str) -> io::Result<()> {
        let id = clip(id);
        let mut inner = self.lock();
        if inner.lines >= 2 * CAPACITY {
            let all: String = inner.order.iter().map(|i| format!("{i}\n")).collect();
            fsutil::write_atomic(&self.path, all.as_bytes())?;
            inner.lines = inner.order.len();
            inner.file = None;
        }
        if inner.file.is_none() {
            inner.file = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(fsutil::STATE_MODE)
                    .open(&self.path)?,
            );
        }
        if let Some(f) = inner.file.as_mut() {
            f.write_all(format!("{id}\n").as_bytes())?;
        }
        inner.lines += 1;
        Ok(())
    }
}

fn clip(id: &str) -> &str {
    let mut end = id.len().min(MAX_ID);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    &id[..end]
}

fn insert(inner: &mut Inner, id: &str) {
    let id = clip(id).replace(['\n', '\r'], "");
    if inner.set.insert(id.clone()) {
        inner.order.push_back(id);
        while inner.order.len() > CAPACITY {
            if let Some(old) = inner.order.pop_front() {
                inner.set.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_across_reopen_and_bounded() {
        let dir = std::env::temp_dir().join(format!("deployd-deliv-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let d = Deliveries::open(&dir).unwrap();
        assert_eq!(d.check("a"), Seen::New);
        assert_eq!(d.check("a"), Seen::Duplicate);
        d.keep("a").unwrap();
        assert_eq!(d.check("b"), Seen::New);
        d.release("b");
        assert_eq!(d.check("b"), Seen::New);
        d.release("b");
        drop(d);
        let d = Deliveries::open(&dir).unwrap();
        assert_eq!(d.check("a"), Seen::Duplicate);
        assert_eq!(d.check("b"), Seen::New);
        for i in 0..(2 * CAPACITY + 10) {
            let id = format!("id-{i}");
            assert_eq!(d.check(&id), Seen::New);
            d.keep(&id).unwrap();
        }
        drop(d);
        let d = Deliveries::open(&dir).unwrap();
        assert_eq!(
            d.check(&format!("id-{}", 2 * CAPACITY + 9)),
            Seen::Duplicate
        );
        assert_eq!(d.check("id-0"), Seen::New, "the oldest are forgotten");
        let lines = fs::read_to_string(dir.join("deliveries"))
            .unwrap()
            .lines()
            .count();
        assert!(lines <= 2 * CAPACITY + 1, "{lines}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
