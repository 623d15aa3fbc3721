//! `kind = "discord"`: a Discord webhook (`POST` JSON with `content` and an
//! embed coloured by the outcome). Discord answers 429 with `Retry-After`
//! when a channel gets too much; the outbox waits that long.

use serde_json::json;

use super::{Document, Tone};
use crate::http_client::Outgoing;

/// The request for `doc`.
pub fn request(url: &str, doc: &Document) -> Outgoing {
    let color = match doc.event().tone {
        Tone::Good => 0x2e_b8_86,
        Tone::Bad => 0xd0_3a_3a,
        Tone::Info => 0x43_9f_e0,
    };
    let mut embed = json!({
        "title": doc.title(),
        "description": doc.lines().join("\n"),
        "color": color,
    });
    if let Some(u) = doc.outputs.get("url").filter(|u| u.starts_with("http")) {
        embed["url"] = json!(u);
    }
    let body = json!({
        "content": doc.title(),
        "embeds": [embed],
        // No @everyone from a commit message or a summary.
        "allowed_mentions": { "parse": [] },
    });
    Outgoing::json(url, &body)
}
