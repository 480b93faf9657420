//! Who is signed in: the session cookie (identity's `hds_…` credential, HttpOnly, SameSite
//! Strict, Secure behind TLS), checked on every request like any bearer credential, and the
//! CSRF tokens every form carries — derived from the session once signed in, a random
//! double-submit cookie on the sign-in form before.

use axum::http::{HeaderMap, header};
use helpdesk_runtime::auth::{Principal, Role};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Web, i18n};

pub(crate) const SESSION_COOKIE: &str = "hd_session";
/// The agent's language and time zone, for display only: a changed value changes nothing
/// but what its owner sees.
pub(crate) const PREFS_COOKIE: &str = "hd_prefs";
pub(crate) const FORM_COOKIE: &str = "hd_form";

/// A signed-in agent or admin.
pub(crate) struct Agent {
    pub(crate) credential: String,
    pub(crate) principal: Principal,
    pub(crate) text: &'static i18n::Text,
    pub(crate) time_zone: chrono_tz::Tz,
}

impl Agent {
    /// The token this agent's forms carry.
    pub(crate) fn csrf(&self) -> String {
        csrf_for(&self.credential)
    }

    /// Whether a submitted form's token is this session's.
    pub(crate) fn checks(&self, token: &str) -> bool {
        constant_time_eq(token.as_bytes(), self.csrf().as_bytes())
    }

    /// A gRPC request on the agent's behalf.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        helpdesk_runtime::grpc::outgoing(message, Some(&format!("Bearer {}", self.credential)))
    }
}

fn csrf_for(credential: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(credential.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(b"helpdesk workspace forms");
    hex::encode(mac.finalize().into_bytes())
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The value of cookie `name`, if the request has it.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// A `Set-Cookie` value for the workspace's path; `max_age` 0 deletes it.
pub(crate) fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/app; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

impl Web {
    /// The agent the request's session belongs to; `None` when there is no live session (or
    /// the credential is anything but a workspace session: a customer's token never opens the
    /// workspace).
    pub(crate) async fn agent(&self, headers: &HeaderMap) -> Option<Agent> {
        let credential = cookie(headers, SESSION_COOKIE)?.to_owned();
        if !credential.starts_with("hds_") {
            return None;
        }
        let principal = self.authenticator.authenticate(Some(&format!("Bearer {credential}")), None).await.ok()?;
        if !matches!(principal.role, Role::Agent | Role::Admin) {
            return None;
        }
        let (language, zone) =
            cookie(headers, PREFS_COOKIE).and_then(|prefs| prefs.split_once('|')).unwrap_or(("en", "UTC"));
        Some(Agent {
            credential,
            principal,
            text: i18n::text(language),
            time_zone: zone.replace("%2F", "/").parse().unwrap_or(chrono_tz::UTC),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_by_name_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; hd_session=hds_x_y; hd_prefs=ko|Asia%2FSeoul".parse().expect("a header"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("hds_x_y"));
        assert_eq!(cookie(&headers, PREFS_COOKIE), Some("ko|Asia%2FSeoul"));
        assert_eq!(cookie(&headers, "missing"), None);
    }

    #[test]
    fn each_session_has_its_own_form_token() {
        assert_ne!(csrf_for("hds_a_1"), csrf_for("hds_a_2"));
        assert_eq!(csrf_for("hds_a_1").len(), 64);
    }
}
