//! Outbound HTTP: the one client notifications and commit statuses are sent
//! with (docs/notifications.md).
//!
//! `ureq` over `rustls` (the `ring` provider), blocking, run on the blocking
//! pool by the outbox. The roots of trust are the system's CA certificates
//! (`rustls-native-certs`: `/etc/ssl/certs`…, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR` when set). The agent — roots, TLS config, connection
//! pool — is built at the first send and not before, so a daemon that has
//! targets configured but has sent nothing carries none of it (the idle
//! daemon's memory stays small). `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
//! `NO_PROXY` are honoured. Errors never carry a URL: a Slack or Discord
//! URL is itself the secret.

use std::sync::OnceLock;
use std::time::Duration;

/// Time to set up a connection (TCP, and TLS).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole exchange, from connecting to the last byte of the answer.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an answer's body is kept (for `notify-test` and errors).
const MAX_ANSWER: u64 = 8 * 1024;
/// How much of a forge API's list is read (workflow runs, pipelines,
/// statuses, webhook deliveries): a page of 100 entries fits many times.
pub const MAX_LIST: u64 = 1024 * 1024;

/// One request to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// `POST`, `GET`…
    pub method: &'static str,
    /// The full URL (may be a secret: never logged).
    pub url: String,
    /// Extra headers (may hold a token: never logged).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Outgoing {
    /// A POST of a JSON document.
    pub fn json(url: &str, value: &serde_json::Value) -> Outgoing {
        Outgoing {
            method: "POST",
            url: url.to_string(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: serde_json::to_vec(value).unwrap_or_default(),
        }
    }

    /// A request without a body: a GET of an API's list, or a POST that
    /// says all in its URL.
    pub fn bare(method: &'static str, url: &str) -> Outgoing {
        Outgoing {
            method,
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Outgoing {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What came back.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After`, in seconds form, when given.
    pub retry_after: Option<Duration>,
    /// The beginning of the body.
    pub body: String,
}

impl Response {
    /// 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What came of one attempt to deliver something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Taken (2xx): the answer, shortened.
    Delivered(String),
    /// Failed in a way that may pass (transport error, 408, 429, 5xx):
    /// try again, not before `after` when the receiver said so.
    Retry {
        /// What went wrong, without a secret.
        error: String,
        /// `Retry-After`.
        after: Option<Duration>,
    },
    /// Refused in a way that will not pass by itself (other 4xx): not tried
    /// again; `hint` says what to check.
    Refused {
        /// What went wrong.
        error: String,
        /// What to check.
        hint: String,
    },
}

impl Attempt {
    /// Classifies an answer; `hint` is what to check on 401/403/404.
    pub fn from_response(resp: &Response, hint: &str) -> Attempt {
        let body = crate::text::truncate(resp.body.trim(), 300).replace('\n', " ");
        let said = if body.is_empty() {
            format!("HTTP {}", resp.status)
        } else {
            format!("HTTP {}: {body}", resp.status)
        };
        match resp.status {
            200..=299 => Attempt::Delivered(said),
            408 | 425 | 429 | 500..=599 => Attempt::Retry {
                error: said,
                after: resp.retry_after,
            },
            401 | 403 | 404 => Attempt::Refused {
                error: said,
                hint: hint.to_string(),
            },
            _ => Attempt::Refused {
                error: said,
                hint: "the receiver refused the request as sent".into(),
            },
        }
    }
}

/// Sends `req` and waits for the answer (blocking; at most
/// [`TOTAL_TIMEOUT`]). An error is a transport failure, in words without
/// the URL.
pub fn send(req: &Outgoing) -> Result<Response, String> {
    send_limited(req, MAX_ANSWER)
}

/// [`send`], keeping up to `limit` bytes of the answer's body instead of
/// 8 KiB: for the lists a forge's API answers with. A body longer than
/// `limit` reads as empty, so a caller that parses it sees no half list.
pub fn send_limited(req: &Outgoing, limit: u64) -> Result<Response, String> {
    let agent = agent();
    let mut builder = ureq::http::Request::builder()
        .method(req.method)
        .uri(&req.url);
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    let request = builder
        .body(req.body.clone())
        .map_err(|_| "the URL or a header is not valid".to_string())?;
    let mut response = agent.run(request).map_err(|e| describe(&e, &req.url))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(retry_after);
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok(Response {
        status,
        retry_after,
        body,
    })
}

/// `Retry-After` as seconds (the HTTP-date form is read as "soon").
fn retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    match v.parse::<u64>() {
        Ok(s) => Some(Duration::from_secs(s)),
        Err(_) => humantime::parse_rfc3339_weak(v)
            .ok()
            .or_else(|| httpdate(v))
            .map(|t| {
                t.duration_since(std::time::SystemTime::now())
                    .unwrap_or_default()
            }),
    }
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send.
fn httpdate(v: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| x == mon)? + 1;
    humantime::parse_rfc3339(&format!("{year}-{m:02}-{day:0>2}T{time}Z")).ok()
}

/// A transport error in words, with every trace of the URL taken out.
fn describe(e: &ureq::Error, url: &str) -> String {
    let text = match e {
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Io(io) => io_words(io),
        other => other.to_string(),
    };
    scrub(&text, url)
}

/// An I/O error as deployd's other transport errors read: `connection
/// refused`, without the standard library's `(os error 111)`.
fn io_words(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `text` without `url`, its path or its query: what may be said of a
/// failure when the URL is a secret.
pub fn scrub(text: &str, url: &str) -> String {
    let mut out = text.replace(url, "<url>");
    if let Some(rest) = url.split_once("://").map(|(_, r)| r)
        && let Some((_, path)) = rest.split_once('/')
        && path.len() > 1
    {
        out = out.replace(path, "…");
    }
    out
}

/// The agent, built at the first send.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let roots = system_roots();
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::from(roots))
            .unversioned_rustls_crypto_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .build();
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(TOTAL_TIMEOUT))
            .max_redirects(0)
            .user_agent(concat!("deployd/", env!("CARGO_PKG_VERSION")))
            .proxy(ureq::Proxy::try_from_env())
            .tls_config(tls)
            .build();
        ureq::Agent::new_with_config(config)
    })
}

/// The system's CA certificates (honouring `SSL_CERT_FILE` and
/// `SSL_CERT_DIR`); what cannot be read is logged once, here.
fn system_roots() -> Vec<ureq::tls::Certificate<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("reading the system's CA certificates: {e}");
    }
    if found.certs.is_empty() {
        tracing::warn!(
            "no CA certificates found (install ca-certificates, or set SSL_CERT_FILE): \
             https targets will fail"
        );
    }
    found
        .certs
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_words() {
        let url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
        let said = scrub(&format!("error sending to {url}"), url);
        assert!(!said.contains("XXXXSECRET"), "{said}");
        let said = scrub("GET /services/T000/B000/XXXXSECRET failed", url);
        assert!(!said.contains("XXXXSECRET"), "{said}");
    }

    #[test]
    fn transport_errors_in_words() {
        let url = "http://127.0.0.1:1/hook";
        let refused = ureq::Error::Io(std::io::Error::from_raw_os_error(111));
        assert_eq!(describe(&refused, url), "connection refused");
        let other = ureq::Error::Io(std::io::Error::other("Broken pipe"));
        assert_eq!(describe(&other, url), "broken pipe");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon"), None);
    }
}
