//! `kind = "webhook"`: the JSON document as it is (docs/notifications.md,
//! *`[notify.NAME]`*), with `X-Deployd-Event` and, when the target has a
//! secret, `X-Deployd-Signature-256: sha256=<HMAC-SHA256 of the body>` —
//! the scheme GitHub uses, so a receiver checks it the way deployd checks
//! forges.

use super::Document;
use crate::config::NotifyTarget;
use crate::forge::hmac_hex;
use crate::http_client::Outgoing;

/// The request for `doc`.
pub fn request(target: &NotifyTarget, url: &str, doc: &Document) -> Outgoing {
    let body = serde_json::to_vec(doc).unwrap_or_default();
    let mut req = Outgoing {
        method: "POST",
        url: url.to_string(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("X-Deployd-Event".into(), doc.event.clone()),
        ],
        body,
    };
    if let Some(key) = &target.key {
        let sig = format!("sha256={}", hmac_hex(key, &req.body));
        req = req.header("X-Deployd-Signature-256", sig);
    }
    req
}
