//! The `[web]` table: the status page and `/metrics` on a listener of their
//! own, and the token that opens them; checked from [`RawWeb`] into [`Web`].

use std::net::SocketAddr;

use crate::config::secrets::{self, Rule, TOKEN};
use crate::config::shape::RawWeb;
use crate::config::{ConfigError, Context};

/// The `[web]` table, checked: the status page's own listener (never the
/// webhook one: the hook is public, this is not).
#[derive(Debug, Clone)]
pub struct Web {
    /// TCP address of the status page and `/metrics`.
    pub listen: SocketAddr,
    /// The token that opens the page; `None` only on a loopback `listen`.
    pub token: Option<WebToken>,
    /// Where users reach the page (e.g. behind a proxy), without a trailing
    /// slash; links use it, and the session cookie is `Secure` when it is https.
    pub public_url: Option<String>,
    /// Show the deploy button (POST with a CSRF token).
    pub actions: bool,
    /// Serve `/metrics` without the token.
    pub metrics_public: bool,
}

/// The web token and who it stands for.
#[derive(Clone)]
pub struct WebToken {
    /// The token itself; never printed (see the `Debug` impl).
    pub secret: String,
    /// Who uses it, recorded as the `pusher` of a deploy started from the page.
    pub name: String,
    /// Where it came from, for `check` (never the token itself).
    pub source: String,
}

impl std::fmt::Debug for WebToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebToken")
            .field("name", &self.name)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The path of `key` in `[web]`.
fn at(key: &str) -> [&str; 2] {
    ["web", key]
}

/// `[web]`, checked against the webhook listener `server_listen`; a page
/// left open on loopback is worth a line in `warnings`.
pub(super) fn check(
    w: RawWeb,
    server_listen: SocketAddr,
    warnings: &mut Vec<String>,
    cx: &Context<'_>,
) -> Result<Web, ConfigError> {
    let listen = cx.address(&at("listen"), w.listen, "127.0.0.1:9001")?;
    if listen == server_listen && listen.port() != 0 {
        return Err(cx.invalid(
            &at("listen"),
            "must differ from server.listen: the webhook listener is public, \
             the status page is not"
                .into(),
        ));
    }
    let invalid = |(key, m): secrets::Problem| cx.invalid(&at(key), m);
    let given = secrets::given(
        w.token,
        w.token_file,
        w.token_env,
        w.token_credential,
        &cx.base,
    );
    let token = match secrets::choose(TOKEN, given, Rule::AtMostOne).map_err(invalid)? {
        Some(chosen) => Some(WebToken {
            secret: chosen.read_filled("token", cx.secrets).map_err(invalid)?,
            name: w.token_name.map_or_else(|| "web".into(), |n| n.0),
            source: chosen.describe("token", cx.secrets),
        }),
        None if listen.ip().is_loopback() => {
            warnings.push(format!(
                "web: no token: anyone who can reach {listen} on this machine \
                 sees the status page{}",
                if w.actions == Some(true) {
                    " and may deploy"
                } else {
                    ""
                }
            ));
            None
        }
        None => {
            return Err(cx.invalid(
                &at("listen"),
                format!(
                    "{listen} is not a loopback address, so the page needs a token: \
                     set token_file, token_env, token_credential or token"
                ),
            ));
        }
    };
    let public_url = match w.public_url.map(|u| u.0) {
        None => None,
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
            Some(u.trim_end_matches('/').to_string())
        }
        Some(u) => {
            return Err(cx.invalid(
                &at("public_url"),
                format!("{u:?} is not an http:// or https:// URL"),
            ));
        }
    };
    Ok(Web {
        listen,
        token,
        public_url,
        actions: w.actions.unwrap_or(false),
        metrics_public: w.metrics_public.unwrap_or(false),
    })
}
