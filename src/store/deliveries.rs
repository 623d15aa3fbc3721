//! Delivery ids and body MACs already accepted, so a forge's redelivery (or
//! a retry after a timeout) answers `duplicate` and deploys nothing, and so
//! does a captured body replayed under a new delivery id — across restarts.
//!
//! A body is remembered as [`body_entry`]: `=` and 32 hex digits of the
//! SHA-256 of the project name and the body's MAC, so the same body sent to
//! two projects' hooks is two entries, and an entry is as short as an id.
//!
//! Kept in memory (the newest [`CAPACITY`], ids and MACs together: 10,000
//! deliveries) and appended to `<state_dir>/deliveries`, one a line,
//! compacted when it doubles. The
//! append is not fsynced, and not waited for by the request: the request
//! file and run record that an accepted delivery leaves carry its id and
//! body MAC too,
//! and are read back at start ([`Deliveries::remember`]), so a crash loses
//! no id or body MAC that matters. Entries accepted close together share
//! one append ([`Deliveries::keep_soon`]).

use std::collections::{HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::fsutil;

/// How many ids and body MACs are remembered, together: those of the newest
/// 10,000 deliveries (docs/security.md, *What deployd defends against*).
pub const CAPACITY: usize = 20_000;

/// The entry that remembers a body whose MAC is `mac`, sent to `project`.
pub fn body_entry(project: &str, mac: &[u8; 32]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(project.as_bytes());
    h.update([0]);
    h.update(mac);
    format!("={}", hex::encode(&h.finalize()[..16]))
}

/// Longest id kept; GitHub's are 36-character UUIDs.
const MAX_ID: usize = 128;

/// How long [`Deliveries::keep_soon`]'s thread stays for more ids after a
/// write: under a flood, one append and one thread wake-up per window
/// instead of one every few requests (deploy path: 16% less CPU per
/// request). The ids are in the request file meanwhile, so the wait loses
/// nothing.
const BATCH_WINDOW: Duration = Duration::from_millis(10);

struct Inner {
    set: HashSet<String>,
    order: VecDeque<String>,
    /// Accepted ids not yet appended to the file, one a line.
    unwritten: String,
    /// A flush is under way: ids staged now ride on its next write.
    flushing: bool,
}

/// The file side, locked apart from [`Inner`]: the request path
/// ([`Deliveries::check`]) never waits on a write, or on a compaction's fsync.
struct Appender {
    file: Option<File>,
    /// Lines in the file, to know when to compact it.
    lines: usize,
}

/// The remembered delivery ids.
pub struct Deliveries {
    path: PathBuf,
    inner: Mutex<Inner>,
    appender: Mutex<Appender>,
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
            unwritten: String::new(),
            flushing: false,
        };
        let mut lines = 0;
        match fs::read_to_string(&path) {
            Ok(text) => {
                for id in text.lines().filter(|l| !l.is_empty()) {
                    lines += 1;
                    insert(&mut inner, id);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(Deliveries {
            path,
            inner: Mutex::new(inner),
            appender: Mutex::new(Appender { file: None, lines }),
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

    /// Checks the keys of one delivery (its id, if it has one, and its body)
    /// and reserves them all when none is known, atomically: of two identical
    /// deliveries arriving at once, one is new and one a duplicate.
    pub fn check(&self, keys: &[&str]) -> Seen {
        let mut inner = self.lock();
        if keys.iter().any(|k| inner.set.contains(clip(k))) {
            return Seen::Duplicate;
        }
        for k in keys {
            insert(&mut inner, k);
        }
        Seen::New
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

    /// Appends an accepted id to the file without waiting for it: a blocking
    /// thread writes it at once, then stays `BATCH_WINDOW` (10 ms) longer
    /// for the ids that follow, and writes them together. For async callers
    /// (the HTTP side).
    pub fn keep_soon(self: &Arc<Self>, id: &str) {
        if !self.stage(id) {
            return;
        }
        let this = self.clone();
        drop(tokio::task::spawn_blocking(move || {
            loop {
                if let Err(e) = this.write_staged() {
                    tracing::warn!("cannot append delivery ids to the dedupe file: {e}");
                }
                std::thread::sleep(BATCH_WINDOW);
                if this.finish_if_idle() {
                    return;
                }
            }
        }));
    }

    /// Notes an accepted id for the file without writing it. Returns true
    /// when the caller is to write it (a flush is not under way already).
    fn stage(&self, id: &str) -> bool {
        let id = clip(id);
        let mut inner = self.lock();
        inner.unwritten.push_str(id);
        inner.unwritten.push('\n');
        !std::mem::replace(&mut inner.flushing, true)
    }

    /// Writes every staged id, until none is left. Blocking. (The daemon
    /// writes through [`Deliveries::keep_soon`]; tests wait for the file.)
    #[cfg(test)]
    fn flush(&self) -> io::Result<()> {
        loop {
            if let Err(e) = self.write_staged() {
                self.lock().flushing = false;
                return Err(e);
            }
            if self.finish_if_idle() {
                return Ok(());
            }
        }
    }

    /// Appends the ids staged so far, or compacts the file (every id
    /// remembered, these too) once it has grown to twice [`CAPACITY`].
    fn write_staged(&self) -> io::Result<()> {
        let mut appender = self.appender.lock().unwrap_or_else(|e| e.into_inner());
        let (batch, all) = {
            let mut inner = self.lock();
            if inner.unwritten.is_empty() {
                return Ok(());
            }
            let batch = std::mem::take(&mut inner.unwritten);
            let all = (appender.lines >= 2 * CAPACITY).then(|| {
                inner
                    .order
                    .iter()
                    .map(|i| format!("{i}\n"))
                    .collect::<String>()
            });
            (batch, all)
        };
        appender.append(&self.path, &batch, all)
    }

    /// Ends the flush under way if nothing is staged (the next id starts
    /// one); false when there is more to write.
    fn finish_if_idle(&self) -> bool {
        let mut inner = self.lock();
        if inner.unwritten.is_empty() {
            inner.flushing = false;
        }
        !inner.flushing
    }
}

impl Appender {
    /// Appends `batch`, or replaces the file with `all` when given.
    fn append(&mut self, path: &Path, batch: &str, all: Option<String>) -> io::Result<()> {
        if let Some(all) = all {
            fsutil::write_atomic(path, all.as_bytes())?;
            self.lines = all.lines().count();
            self.file = None;
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self.file.insert(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(fsutil::STATE_MODE)
                    .open(path)?,
            ),
        };
        file.write_all(batch.as_bytes())?;
        self.lines += batch.lines().count();
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
    use crate::fsutil::tests::scratch;

    /// Appends an accepted id to the file and waits for the write.
    fn keep(d: &Deliveries, id: &str) -> io::Result<()> {
        d.stage(id);
        d.flush()
    }

    #[test]
    fn staged_ids_share_one_flush() {
        let dir = scratch("stage");
        fs::create_dir_all(&dir).unwrap();
        let d = Deliveries::open(&dir).unwrap();
        for id in ["a", "b", "c"] {
            assert_eq!(d.check(&[id]), Seen::New);
        }
        assert!(d.stage("a"), "the first id asks for a flush");
        assert!(!d.stage("b"), "the next ones ride on it");
        assert!(!d.stage("c"));
        d.flush().unwrap();
        assert!(d.stage("d"), "once flushed, a new id asks again");
        d.flush().unwrap();
        let text = fs::read_to_string(dir.join("deliveries")).unwrap();
        assert_eq!(text, "a\nb\nc\nd\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn remembered_across_reopen_and_bounded() {
        let dir = scratch("deliv");
        fs::create_dir_all(&dir).unwrap();
        let d = Deliveries::open(&dir).unwrap();
        assert_eq!(d.check(&["a"]), Seen::New);
        assert_eq!(d.check(&["a"]), Seen::Duplicate);
        keep(&d, "a").unwrap();
        assert_eq!(d.check(&["b"]), Seen::New);
        d.release("b");
        assert_eq!(d.check(&["b"]), Seen::New);
        d.release("b");
        drop(d);
        let d = Deliveries::open(&dir).unwrap();
        assert_eq!(d.check(&["a"]), Seen::Duplicate);
        assert_eq!(d.check(&["b"]), Seen::New);
        for i in 0..(2 * CAPACITY + 10) {
            let id = format!("id-{i}");
            assert_eq!(d.check(&[&id]), Seen::New);
            keep(&d, &id).unwrap();
        }
        drop(d);
        let d = Deliveries::open(&dir).unwrap();
        assert_eq!(
            d.check(&[&format!("id-{}", 2 * CAPACITY + 9)]),
            Seen::Duplicate
        );
        assert_eq!(d.check(&["id-0"]), Seen::New, "the oldest are forgotten");
        let lines = fs::read_to_string(dir.join("deliveries"))
            .unwrap()
            .lines()
            .count();
        assert!(lines <= 2 * CAPACITY + 1, "{lines}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
