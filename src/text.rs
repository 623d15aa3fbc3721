//! Small text helpers shared by the parts that put outside text into
//! messages: a forge's answer, a log tail, a commit status.

/// `s` cut to at most `max` bytes, on a character boundary.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The first 12 characters of a commit id, as logs, messages and status
/// lines show it.
pub(crate) fn short_sha(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
