//! `kind = "ntfy"`: the message as the body of a `POST` to the topic URL,
//! with ntfy's `Title`, `Priority` (failures `high`), `Tags` (emoji
//! shortcodes) and `Click` (`outputs.url`) headers.

use super::{Document, Tone};
use crate::http_client::Outgoing;

/// The request for `doc`.
pub fn request(url: &str, doc: &Document) -> Outgoing {
    let (priority, tags) = match doc.event().tone {
        Tone::Bad => ("high", "rotating_light,deployd"),
        Tone::Good => ("default", "white_check_mark,deployd"),
        Tone::Info => ("low", "hourglass,deployd"),
    };
    // Header values must be visible ASCII: the title is cut to that.
    let title: String = doc
        .title()
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    let mut req = Outgoing {
        method: "POST",
        url: url.to_string(),
        headers: vec![
            ("Title".into(), title),
            ("Priority".into(), priority.into()),
            ("Tags".into(), tags.into()),
        ],
        body: doc.lines().join("\n").into_bytes(),
    };
    if let Some(u) = doc
        .outputs
        .get("url")
        .filter(|u| u.is_ascii() && u.starts_with("http"))
    {
        req = req.header("Click", u.clone());
    }
    req
}
