//! The `[projects.NAME.report]` table: where a project's runs report their
//! outcome on the forge (a commit status, or a GitHub deployment).

use crate::config::secrets::{self, Rule, Secret, TOKEN};
use crate::config::shape::RawReport;
use crate::config::{ConfigError, Context};
use crate::forge::{self, Provider};

/// One `[projects.NAME.report]` table: the commit status on the forge.
#[derive(Debug, Clone)]
pub struct Report {
    /// The API token.
    pub token: Secret,
    /// Where the token came from, for `check`.
    pub token_source: String,
    /// The API's base URL (a default per provider).
    pub api_url: String,
    /// The status's name on the commit.
    pub context: String,
    /// GitHub: report as a deployment to this environment instead.
    pub environment: Option<String>,
    /// GitHub: the id of the repository webhook that calls deployd; with
    /// it, failed deliveries since deployd last ran are redelivered at
    /// start (docs/catch-up.md).
    pub hook_id: Option<u64>,
}

/// The report table of project `name`, whose forge is `provider`, checked.
pub(super) fn check(
    r: RawReport,
    name: &str,
    provider: Provider,
    cx: &Context<'_>,
) -> Result<Report, ConfigError> {
    let rk = |key: &'static str| ["projects", name, "report", key];
    let given = secrets::given(
        r.token,
        r.token_file,
        r.token_env,
        r.token_credential,
        &cx.base,
    );
    let chosen = secrets::choose(TOKEN, given, Rule::ExactlyOne)
        .map_err(|(key, m)| cx.invalid(&rk(key), m))?
        .ok_or_else(|| {
            cx.invalid(
                &["projects", name, "report"],
                "needs an API token: one of token, token_file, token_env, token_credential".into(),
            )
        })?;
    let token = chosen
        .read_filled("token", cx.secrets)
        .map_err(|(key, m)| cx.invalid(&rk(key), m))?;
    let api_url = r
        .api_url
        .map(|u| u.0.trim_end_matches('/').to_string())
        .unwrap_or_else(|| forge::default_api_url(provider).to_string());
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(cx.invalid(&rk("api_url"), format!("{api_url:?} is not an http(s) URL")));
    }
    let environment = r.environment.map(|e| e.0).filter(|e| !e.is_empty());
    if environment.is_some() && provider != Provider::Github {
        return Err(cx.invalid(
            &rk("environment"),
            "only GitHub has deployments; leave it out for this provider".into(),
        ));
    }
    let hook_id = r.hook_id.map(|h| h.0 as u64);
    if hook_id.is_some() && provider != Provider::Github {
        return Err(cx.invalid(
            &rk("hook_id"),
            "only GitHub redelivers through its API; leave it out for this provider".into(),
        ));
    }
    Ok(Report {
        token: Secret(token),
        token_source: chosen.describe("token", cx.secrets),
        api_url,
        context: r
            .context
            .map(|c| c.0)
            .unwrap_or_else(|| format!("deployd/{name}")),
        environment,
        hook_id,
    })
}
