//! Who may see the page: the `[web]` token, sent as `Authorization: Bearer`
//! or entered once on the login page, which sets a session cookie. The
//! cookie holds an HMAC of the token (never the token), so changing the
//! token logs everyone out; forms carry a CSRF token derived the same way.

use hyper::HeaderMap;
use hyper::header;

use crate::config::Web;
use crate::forge::{Key, hmac_hex};

/// The session cookie's name.
pub const COOKIE: &str = "deployd_session";

/// What a request proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token is configured (loopback only): everyone is let in.
    Open,
    /// The right token, as a bearer header: not a browser's ambient
    /// credential, so a form needs no CSRF token.
    Bearer,
    /// A valid session cookie.
    Session,
    /// A bearer token that is not the token.
    WrongToken,
    /// Nothing valid.
    Denied,
}

impl Access {
    /// Whether the request may see the page.
    pub fn allowed(&self) -> bool {
        !matches!(self, Access::Denied | Access::WrongToken)
    }
}

/// The keys derived from the token, made once per config.
pub struct Auth {
    /// The token itself, to compare what a login or bearer header sends.
    token: Option<String>,
    /// The cookie's value for this token.
    session: String,
    /// The CSRF token forms carry.
    csrf: String,
    /// `Secure` on the cookie (public_url is https).
    secure: bool,
}

impl Auth {
    /// Keys for `web`'s token. Without one, a key from the process's
    /// randomness keeps CSRF tokens unguessable all the same.
    pub fn new(web: &Web) -> Auth {
        let secret = match &web.token {
            Some(t) => t.secret.clone().into_bytes(),
            None => random_key(),
        };
        let key = Key::new(&secret);
        Auth {
            token: web.token.as_ref().map(|t| t.secret.clone()),
            session: hmac_hex(&key, b"deployd web session v1"),
            csrf: hmac_hex(&key, b"deployd web csrf v1"),
            secure: web
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://")),
        }
    }

    /// What the request's headers prove.
    pub fn check(&self, headers: &HeaderMap) -> Access {
        let Some(token) = &self.token else {
            return Access::Open;
        };
        if let Some(v) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            && let Some(sent) = v.strip_prefix("Bearer ")
        {
            return if same(sent.trim().as_bytes(), token.as_bytes()) {
                Access::Bearer
            } else {
                Access::WrongToken
            };
        }
        if cookie(headers, COOKIE).is_some_and(|c| same(c.as_bytes(), self.session.as_bytes())) {
            return Access::Session;
        }
        Access::Denied
    }

    /// Whether `sent` is the token (a login).
    pub fn login(&self, sent: &str) -> bool {
        self.token
            .as_ref()
            .is_none_or(|t| same(sent.as_bytes(), t.as_bytes()))
    }

    /// The CSRF token for forms.
    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Whether a form's CSRF field is right.
    pub fn csrf_ok(&self, sent: &str) -> bool {
        same(sent.as_bytes(), self.csrf.as_bytes())
    }

    /// The `Set-Cookie` value after a login.
    pub fn set_cookie(&self) -> String {
        format!(
            "{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{}",
            self.session,
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that logs out.
    pub fn clear_cookie(&self) -> String {
        format!(
            "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure { "; Secure" } else { "" }
        )
    }

    /// Whether a token is configured (a login page makes sense).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
}

/// The value of cookie `name`, if the request sent it.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Compares in time that depends on the length alone.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 bytes from the kernel's random source (a key that dies with the process).
fn random_key() -> Vec<u8> {
    use std::io::Read;
    let mut key = vec![0u8; 32];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .is_err()
    {
        // No /dev/urandom: the clock and pid, which still differ per start.
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        key = seed.into_bytes();
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn web(token: Option<&str>) -> Web {
        Web {
            listen: "127.0.0.1:9001".parse().unwrap(),
            token: token.map(|t| crate::config::WebToken {
                secret: t.into(),
                name: "web".into(),
                source: "token inline in the config".into(),
            }),
            public_url: Some("https://deploy.example.com".into()),
            actions: true,
            metrics_public: false,
        }
    }

    #[test]
    fn cookie_is_bound_to_the_token() {
        let a = Auth::new(&web(Some("one")));
        let b = Auth::new(&web(Some("two")));
        assert!(a.set_cookie().contains("HttpOnly; SameSite=Strict; Secure"));
        assert!(!a.set_cookie().contains("one"));
        let mut h = HeaderMap::new();
        let value = a.set_cookie();
        let pair = value.split(';').next().unwrap();
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {pair}")).unwrap(),
        );
        assert_eq!(a.check(&h), Access::Session);
        assert_eq!(b.check(&h), Access::Denied);
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer one"),
        );
        assert_eq!(a.check(&h), Access::Bearer);
        assert_eq!(b.check(&h), Access::WrongToken);
        assert_eq!(Auth::new(&web(None)).check(&HeaderMap::new()), Access::Open);
        assert_ne!(a.csrf(), b.csrf());
        assert!(a.csrf_ok(a.csrf()) && !a.csrf_ok(b.csrf()));
    }
}
