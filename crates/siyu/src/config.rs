//! Configuration in layers: built-in defaults, then a TOML file (`--config FILE` or
//! `SIYU_CONFIG`), then environment variables, then command-line flags. Unknown keys in
//! the file are warned about, not silently ignored.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use siyu_runtime::ingest::IngestConfig;
use siyu_runtime::{NodeConfig, Role};
use siyu_server::{CookieSecure, ServerConfig};
use siyu_store::LoginThrottle;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://siyu.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

const KNOWN_KEYS: &[&str] = &[
    "listen",
    "database_url",
    "secret_key",
    "log_format",
    "max_connections",
    "body_limit_bytes",
    "trust_proxy_headers",
    "cookie_secure",
    "public_url",
    "dedup_window_secs",
    "wait_for_profiles",
    "max_ingest_backlog",
    "job_lease_secs",
    "wecom_transfer_poll_secs",
    "wecom_broadcast_poll_secs",
    "login",
];
const KNOWN_LOGIN_KEYS: &[&str] = &[
    "window_secs",
    "max_failures_per_email",
    "max_failures_per_ip",
];

/// The config file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub database_url: Option<String>,
    /// Base64 of 32 bytes; seals stored secrets. Prefer the `SIYU_SECRET_KEY` variable.
    pub secret_key: Option<String>,
    /// `text` (default) or `json`.
    pub log_format: Option<String>,
    pub max_connections: Option<u32>,
    pub body_limit_bytes: Option<usize>,
    pub trust_proxy_headers: Option<bool>,
    pub cookie_secure: Option<CookieSecure>,
    /// Where browsers reach the console (`https://scrm.brand.cn`): signed-in requests
    /// that change something must come from this origin.
    pub public_url: Option<String>,
    /// How long (seconds) a messageId is remembered per source to drop retries.
    pub dedup_window_secs: Option<i64>,
    /// Tracking answers wait for the events to reach profiles instead of answering once
    /// they are durably logged.
    pub wait_for_profiles: Option<bool>,
    /// Tracking calls get 503 while this many events wait to be applied.
    pub max_ingest_backlog: Option<i64>,
    /// How long a node that dies holds the jobs it was running before others take
    /// them (seconds, 1–30; heartbeats renew it every third of it).
    pub job_lease_secs: Option<i64>,
    /// How often a waiting WeCom customer transfer's result is read (seconds, 1 to a
    /// day; an hour unless set).
    pub wecom_transfer_poll_secs: Option<u64>,
    /// How often a WeCom mass send's member tasks are read while members have not sent
    /// them (seconds, 10 to a day; 600 unless set).
    pub wecom_broadcast_poll_secs: Option<u64>,
    pub login: LoginConfig,
    /// Keys of the file this version does not know, to warn about once logging runs.
    #[serde(skip)]
    pub unknown_keys: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct LoginConfig {
    pub window_secs: Option<i64>,
    pub max_failures_per_email: Option<i64>,
    pub max_failures_per_ip: Option<i64>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let table: toml::Table = text
            .parse()
            .with_context(|| format!("the config file {} is not valid TOML", path.display()))?;
        let mut unknown = Vec::new();
        for (key, value) in &table {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                unknown.push(key.clone());
            } else if let (true, Some(login)) = (key == "login", value.as_table()) {
                unknown.extend(
                    login
                        .keys()
                        .filter(|k| !KNOWN_LOGIN_KEYS.contains(&k.as_str()))
                        .map(|k| format!("login.{k}")),
                );
            }
        }
        let mut config: FileConfig = table
            .try_into()
            .with_context(|| format!("the config file {} is not valid", path.display()))?;
        config.unknown_keys = unknown;
        Ok(config)
    }

    pub fn server_config(&self, listen: Option<String>) -> ServerConfig {
        let defaults = ServerConfig::default();
        let throttle_defaults = LoginThrottle::default();
        ServerConfig {
            listen: listen
                .or_else(|| self.listen.clone())
                .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
            body_limit_bytes: self.body_limit_bytes.unwrap_or(defaults.body_limit_bytes),
            trust_proxy_headers: env_bool("SIYU_TRUST_PROXY_HEADERS")
                .or(self.trust_proxy_headers)
                .unwrap_or(defaults.trust_proxy_headers),
            cookie_secure: self.cookie_secure.unwrap_or(defaults.cookie_secure),
            public_url: std::env::var("SIYU_PUBLIC_URL")
                .ok()
                .filter(|v| !v.is_empty())
                .or_else(|| self.public_url.clone()),
            login_throttle: LoginThrottle {
                window_ms: self
                    .login
                    .window_secs
                    .map(|s| s * 1000)
                    .unwrap_or(throttle_defaults.window_ms),
                max_failures_per_email: self
                    .login
                    .max_failures_per_email
                    .unwrap_or(throttle_defaults.max_failures_per_email),
                max_failures_per_ip: self
                    .login
                    .max_failures_per_ip
                    .unwrap_or(throttle_defaults.max_failures_per_ip),
            },
        }
    }

    /// The node's settings for a role: how tracked events are taken in.
    pub fn node_config(&self, role: Role) -> NodeConfig {
        let defaults = IngestConfig::default();
        NodeConfig {
            role,
            ingest: IngestConfig {
                dedup_window_ms: self
                    .dedup_window_secs
                    .map(|s| s * 1000)
                    .unwrap_or(defaults.dedup_window_ms),
                wait_for_profiles: self.wait_for_profiles.unwrap_or(defaults.wait_for_profiles),
                max_backlog: self.max_ingest_backlog.unwrap_or(defaults.max_backlog),
            },
            job_lease_ms: self
                .job_lease_secs
                .map_or(siyu_runtime::DEFAULT_LEASE_MS, |s| s.clamp(1, 30) * 1000),
            wecom_transfer_poll: self
                .wecom_transfer_poll_secs
                .map_or(siyu_runtime::wecom::TRANSFER_POLL, |s| {
                    std::time::Duration::from_secs(s.clamp(1, 86_400))
                }),
            wecom_broadcast_poll: self
                .wecom_broadcast_poll_secs
                .map_or(siyu_runtime::wecom::BROADCAST_POLL, |s| {
                    std::time::Duration::from_secs(s.clamp(10, 86_400))
                }),
            ..NodeConfig::default()
        }
    }

    /// The secret key: `SIYU_SECRET_KEY`, else the file's.
    pub fn secret_key(&self) -> Option<String> {
        std::env::var("SIYU_SECRET_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .or_else(|| self.secret_key.clone())
    }

    pub fn log_json(&self) -> bool {
        std::env::var("SIYU_LOG_FORMAT")
            .ok()
            .or_else(|| self.log_format.clone())
            .is_some_and(|f| f.eq_ignore_ascii_case("json"))
    }
}

fn env_bool(name: &str) -> Option<bool> {
    std::env::var(name)
        .ok()
        .map(|v| matches!(v.as_str(), "1" | "true" | "yes" | "on"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_values_apply_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("siyu.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nbody_limit_bytes = 2048\nunknown_key = 1\n[login]\nmax_failures_per_email = 3\nmax_tries = 1\n",
        )
        .unwrap();
        let file = FileConfig::load(Some(&path)).unwrap();
        let server = file.server_config(None);
        assert_eq!(server.listen, "0.0.0.0:9000");
        assert_eq!(server.body_limit_bytes, 2048);
        assert_eq!(server.login_throttle.max_failures_per_email, 3);
        assert_eq!(file.unknown_keys, ["login.max_tries", "unknown_key"]);
        assert_eq!(
            file.server_config(Some("127.0.0.1:1".into())).listen,
            "127.0.0.1:1"
        );
    }

    #[test]
    fn a_broken_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listen = [").unwrap();
        let err = FileConfig::load(Some(&path)).unwrap_err();
        assert!(format!("{err:#}").contains("bad.toml"));
    }
}
