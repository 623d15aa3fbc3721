//! The input format of the `signature` and `event` targets: an HTTP message
//! without its request line, so that seeds are readable deliveries and the
//! fuzzer mutates header names, header values and the body alike.
//!
//! ```text
//! X-GitHub-Event: push
//! Content-Type: application/json
//!
//! {"ref":"refs/heads/main", …}
//! ```
//!
//! Header lines end at `\n` (a trailing `\r` is dropped); the first empty
//! line ends the headers and everything after it is the body, byte for byte.
//! A line that is not a valid header (no colon, a name or value hyper would
//! refuse) is skipped, as hyper would never hand deployd such a header.

use deployd::forge::Provider;
use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

/// Every forge, so that each input is tried against each of them.
pub const PROVIDERS: [Provider; 4] = [
    Provider::Github,
    Provider::Gitea,
    Provider::Gitlab,
    Provider::Bitbucket,
];

/// Splits off the first line (without its `\n`).
pub fn first_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The headers and body of a message in the format above.
pub fn message(data: &[u8]) -> (HeaderMap, &[u8]) {
    let mut headers = HeaderMap::new();
    let mut rest = data;
    while !rest.is_empty() {
        let (line, after) = first_line(rest);
        rest = after;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = &line[..colon];
        // One space after the colon is the format; any other whitespace is
        // kept, so the value's own trimming is exercised too.
        let value = line[colon + 1..]
            .strip_prefix(b" ")
            .unwrap_or(&line[colon + 1..]);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    (headers, rest)
}
