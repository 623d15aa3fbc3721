//! `kind = "slack"`: a Slack incoming webhook. A `text` (what the
//! notification and a plain client show) and one attachment coloured by the
//! outcome, so a failure stands out in the channel.

use serde_json::json;

use super::{Document, Tone};
use crate::http_client::Outgoing;

/// The request for `doc`.
pub fn request(url: &str, doc: &Document) -> Outgoing {
    let mut lines = doc.lines();
    if let Some(u) = doc.outputs.get("url") {
        // Slack's link syntax; the bare URL is the last line.
        lines.pop();
        lines.push(format!("<{u}|{u}>"));
    }
    let color = match doc.event().tone {
        Tone::Good => "good",
        Tone::Bad => "danger",
        Tone::Info => "#439FE0",
    };
    let body = json!({
        "text": format!("*{}*", escape(&doc.title())),
        "attachments": [{
            "color": color,
            "fallback": format!("{} — {}", doc.title(), lines.join(" · ")),
            "text": lines.iter().map(|l| if l.starts_with('<') { l.clone() } else { escape(l) })
                .collect::<Vec<_>>().join("\n"),
        }],
    });
    Outgoing::json(url, &body)
}

/// Slack's three control characters.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
