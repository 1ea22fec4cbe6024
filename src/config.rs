//! Service configuration: defaults, then a TOML file, then `GIFTRANK_*` environment
//! variables, then command-line flags — validated once at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Everything `giftrank serve` can be told. Keys are flat; each can also be given as
/// `GIFTRANK_<KEY>` in the environment (e.g. `GIFTRANK_MAX_CANDIDATES=5000`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Public listener: /rank, /healthz, /readyz, /metrics, /v1/models.
    pub listen: SocketAddr,
    /// Admin listener: /admin/reload, /admin/pin/{version}, /admin/unpin.
    pub admin_listen: SocketAddr,
    /// gRPC listener: giftrank.v1.Ranker and grpc.health.v1.Health.
    pub grpc_listen: SocketAddr,
    /// The model repository: numbered version directories.
    pub model_repo: PathBuf,
    /// Bearer token the admin listener requires when it is not on loopback.
    pub admin_token: Option<String>,
    /// `text` (human-readable) or `json` log lines.
    pub log_format: LogFormat,
    /// Which log lines to write, as a tracing filter: `info`, `debug`, `giftrank=debug,info`, …
    pub log_level: String,
    /// Largest request body accepted (413 above).
    pub max_body_bytes: usize,
    /// Most candidates in one request (413 above).
    pub max_candidates: usize,
    /// Deadline of one /rank request (504 past it).
    pub request_timeout_ms: u64,
    /// /rank requests served at once; more are shed at once with 503 and `Retry-After`.
    pub max_inflight_requests: usize,
    /// Seconds between rescans of the model repository (0 turns rescans off).
    pub rescan_interval_secs: u64,
    /// Watch the repository for file-system events.
    pub watch_events: bool,
    /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
    pub drain_timeout_secs: u64,
    /// Most connections open at once on each listener; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// An HTTP/1 request head not complete within this closes the connection (slow
    /// headers); it also bounds how long an idle keep-alive connection stays open.
    pub header_read_timeout_ms: u64,
    /// A request body that sends nothing for this long fails (slow bodies). A `/rank`
    /// body must also arrive within the request's deadline.
    pub body_read_timeout_ms: u64,
    /// Rankings that score at once (the others wait, each at most as long as its
    /// deadline allows); 0 = one per core, plus one.
    pub scoring_slots: usize,
    /// A fixed cost per candidate and model, in nanoseconds, for the deadline planner
    /// instead of the costs it learns (0 = learn them). For tests and load drills.
    pub fixed_cost_ns_per_row: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: ([0, 0, 0, 0], 8080).into(),
            admin_listen: ([127, 0, 0, 1], 8081).into(),
            grpc_listen: ([0, 0, 0, 0], 9090).into(),
            model_repo: PathBuf::from("models/gift"),
            admin_token: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            max_body_bytes: 16 * 1024 * 1024,
            max_candidates: 10_000,
            request_timeout_ms: 1_000,
            max_inflight_requests: 64,
            rescan_interval_secs: 10,
            watch_events: true,
            drain_timeout_secs: 20,
            max_connections: 4096,
            header_read_timeout_ms: 30_000,
            body_read_timeout_ms: 10_000,
            scoring_slots: 0,
            fixed_cost_ns_per_row: 0,
        }
    }
}

/// A configuration that cannot be used, with the source and key at fault.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Values given on the command line; they win over everything else.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub admin_listen: Option<SocketAddr>,
    pub grpc_listen: Option<SocketAddr>,
    pub model_repo: Option<PathBuf>,
}

/// Every configuration key, as `GIFTRANK_<KEY>` in the environment.
const KEYS: [&str; 19] = [
    "listen",
    "admin_listen",
    "grpc_listen",
    "model_repo",
    "admin_token",
    "log_format",
    "log_level",
    "max_body_bytes",
    "max_candidates",
    "request_timeout_ms",
    "max_inflight_requests",
    "rescan_interval_secs",
    "watch_events",
    "drain_timeout_secs",
    "max_connections",
    "header_read_timeout_ms",
    "body_read_timeout_ms",
    "scoring_slots",
    "fixed_cost_ns_per_row",
];

impl Config {
    /// Builds the configuration: defaults ← `file` ← `env` (pairs of `GIFTRANK_*` variables) ← `flags`.
    ///
    /// Unknown keys in the file are errors. Unknown `GIFTRANK_*` variables are returned as
    /// warnings instead: the environment also carries variables nobody meant for giftrank
    /// (Kubernetes adds `GIFTRANK_PORT` for a Service named giftrank).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
                // The file alone first, so its errors carry the file's line and key.
                toml::from_str::<Config>(&text)
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix("GIFTRANK_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if !KEYS.contains(&key.as_str()) {
                warnings.push(format!(
                    "ignoring {name}: giftrank has no configuration key `{key}`"
                ));
                continue;
            }
            table.insert(key.clone(), env_value(&key, &value));
        }
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let key = e.path().to_string();
                let source = format!("GIFTRANK_{}", key.to_ascii_uppercase());
                ConfigError(format!(
                    "{key} (from {source}): {}",
                    e.into_inner().message().trim()
                ))
            })?;
        if let Some(listen) = flags.listen {
            config.listen = listen;
        }
        if let Some(admin_listen) = flags.admin_listen {
            config.admin_listen = admin_listen;
        }
        if let Some(grpc_listen) = flags.grpc_listen {
            config.grpc_listen = grpc_listen;
        }
        if let Some(repo) = &flags.model_repo {
            config.model_repo = repo.clone();
        }
        config.validate()?;
        Ok((config, warnings))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_candidates", self.max_candidates as u64),
            ("request_timeout_ms", self.request_timeout_ms),
            ("max_inflight_requests", self.max_inflight_requests as u64),
            ("max_connections", self.max_connections as u64),
            ("header_read_timeout_ms", self.header_read_timeout_ms),
            ("body_read_timeout_ms", self.body_read_timeout_ms),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError(format!("{key} must be greater than 0")));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return Err(ConfigError(format!(
                "log_level `{}` is not a valid log filter",
                self.log_level
            )));
        }
        if self.listen == self.admin_listen && self.listen.port() != 0 {
            return Err(ConfigError(format!(
                "listen and admin_listen are both {}; admin routes need their own listener",
                self.listen
            )));
        }
        for (key, addr) in [("listen", self.listen), ("admin_listen", self.admin_listen)] {
            if self.grpc_listen == addr && addr.port() != 0 {
                return Err(ConfigError(format!(
                    "grpc_listen and {key} are both {addr}; gRPC needs its own listener"
                )));
            }
        }
        if !self.admin_listen.ip().is_loopback()
            && self.admin_token.as_deref().is_none_or(str::is_empty)
        {
            return Err(ConfigError(format!(
                "admin_listen {} is not loopback, so admin_token (or GIFTRANK_ADMIN_TOKEN) must be set",
                self.admin_listen
            )));
        }
        Ok(())
    }

    /// How many rankings score at once. The default is one per core plus one: a job that
    /// ends leaves its core idle until the next waiter is woken and handed to a thread,
    /// and reading bodies and writing answers runs outside the slots. Measured on 2 cores
    /// (8 clients × 1,000 candidates): 2 slots cost ~12% of the throughput of unlimited
    /// jobs, 3 slots none.
    pub fn scoring_slots(&self) -> usize {
        match self.scoring_slots {
            0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get) + 1,
            n => n,
        }
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }
}

/// An environment value as TOML: numbers and booleans by the key's type, else a string.
fn env_value(key: &str, value: &str) -> toml::Value {
    let numeric = matches!(
        key,
        "max_body_bytes"
            | "max_candidates"
            | "request_timeout_ms"
            | "max_inflight_requests"
            | "rescan_interval_secs"
            | "drain_timeout_secs"
            | "max_connections"
            | "header_read_timeout_ms"
            | "body_read_timeout_ms"
            | "scoring_slots"
            | "fixed_cost_ns_per_row"
    );
    if numeric {
        if let Ok(n) = value.trim().parse::<i64>() {
            return toml::Value::Integer(n);
        }
    }
    if key == "watch_events" {
        if let Ok(b) = value.trim().parse::<bool>() {
            return toml::Value::Boolean(b);
        }
    }
    toml::Value::String(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_need_no_configuration() {
        let (config, warnings) = Config::load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
        assert!(warnings.is_empty());
        assert_eq!(config.model_repo, PathBuf::from("models/gift"));
    }

    #[test]
    fn file_then_environment_then_flags() {
        let dir = std::env::temp_dir().join(format!("giftrank-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("giftrank.toml");
        std::fs::write(
            &file,
            "max_candidates = 500\nrequest_timeout_ms = 250\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let flags = Overrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Overrides::default()
        };
        let (config, _) = Config::load(
            Some(&file),
            env(&[
                ("GIFTRANK_MAX_CANDIDATES", "700"),
                ("GIFTRANK_GRPC_LISTEN", "127.0.0.1:9191"),
                ("PATH", "/bin"),
            ]),
            &flags,
        )
        .unwrap();
        assert_eq!(config.max_candidates, 700);
        assert_eq!(config.request_timeout_ms, 250);
        assert_eq!(config.listen, "127.0.0.1:9100".parse().unwrap());
        assert_eq!(config.grpc_listen, "127.0.0.1:9191".parse().unwrap());
        let flags = Overrides {
            grpc_listen: Some("127.0.0.1:9292".parse().unwrap()),
            ..Overrides::default()
        };
        let (config, _) = Config::load(
            None,
            env(&[("GIFTRANK_GRPC_LISTEN", "127.0.0.1:9191")]),
            &flags,
        )
        .unwrap();
        assert_eq!(config.grpc_listen, "127.0.0.1:9292".parse().unwrap());
    }

    #[test]
    fn bad_values_name_the_key() {
        let err = Config::load(
            None,
            env(&[("GIFTRANK_MAX_CANDIDATES", "many")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_candidates"), "{err}");
        let (_, warnings) = Config::load(
            None,
            env(&[("GIFTRANK_PORT", "tcp://10.0.0.1:8080")]),
            &Overrides::default(),
        )
        .unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("GIFTRANK_PORT"), "{warnings:?}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("giftrank.toml");
        std::fs::write(&file, "max_candidate = 5\n").unwrap();
        let err = Config::load(Some(&file), env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("max_candidate"), "{err}");
        let err = Config::load(
            None,
            env(&[("GIFTRANK_LOG_LEVEL", "=][")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("log_level"), "{err}");
        let err = Config::load(
            None,
            env(&[("GIFTRANK_REQUEST_TIMEOUT_MS", "0")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("request_timeout_ms"), "{err}");
        let err = Config::load(
            None,
            env(&[("GIFTRANK_ADMIN_LISTEN", "0.0.0.0:8081")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("admin_token"), "{err}");
        let err = Config::load(
            None,
            env(&[("GIFTRANK_GRPC_LISTEN", "0.0.0.0:8080")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("grpc_listen"), "{err}");
    }
}
