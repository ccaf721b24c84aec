//! Logging to stderr in hclog's JSON form, which go-plugin parses and OpenTofu routes through
//! `TF_LOG` / `TF_LOG_PROVIDER`.
//!
//! The level comes from `TF_LOG_PROVIDER`, else `TF_LOG` (`trace`, `debug`, `info`, `warn`,
//! `error`, `json` = trace, `off`); unset means off, as with providers built on HashiCorp's SDKs.
//! Log lines carry identifiers (stack, component, secret name, store, coordinate), never values;
//! records of crates that may print request bodies are dropped (see [`SILENCED`]).

use std::io::Write;

use log::{LevelFilter, Log, Metadata, Record};

struct Hclog {
    level: LevelFilter,
}

/// Crates whose records are never forwarded, at any level: `aws_sigv4` prints every signed
/// request, body included when `LOG_SIGNABLE_BODY=true` is in the environment, and the bodies of
/// SSM PutParameter and Secrets Manager PutSecretValue carry secret values.
const SILENCED: &[&str] = &["aws_sigv4"];

/// Whether `target` (a module path) belongs to a [`SILENCED`] crate.
fn silenced(target: &str) -> bool {
    SILENCED.iter().any(|krate| {
        target
            .strip_prefix(krate)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Other crates (HTTP, TLS, cloud SDKs) describe what they send and receive at debug and trace,
/// bodies included; only their info and above are forwarded. Our own records follow the level.
const OTHER_CRATES_MAX: log::Level = log::Level::Info;

fn ours(target: &str) -> bool {
    ["atmos_provider", "terraform_provider_atmos"]
        .iter()
        .any(|krate| {
            target
                .strip_prefix(krate)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

impl Log for Hclog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let target = metadata.target();
        metadata.level() <= self.level
            && !silenced(target)
            && (ours(target) || metadata.level() <= OTHER_CRATES_MAX)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(record);
        let mut err = std::io::stderr().lock();
        // A closed stderr must not take the provider down.
        let _ = err.write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

fn format_line(record: &Record<'_>) -> String {
    let level = match record.level() {
        log::Level::Error => "error",
        log::Level::Warn => "warn",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    };
    let entry = serde_json::json!({
        "@level": level,
        "@message": record.args().to_string(),
        "@module": "provider.atmos",
        "@timestamp": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "target": record.target(),
    });
    let mut line = entry.to_string();
    line.push('\n');
    line
}

/// Parses a `TF_LOG`-style level.
pub fn parse_level(value: &str) -> LevelFilter {
    match value.trim().to_ascii_lowercase().as_str() {
        "trace" | "json" => LevelFilter::Trace,
        "debug" => LevelFilter::Debug,
        "info" => LevelFilter::Info,
        "warn" => LevelFilter::Warn,
        "error" => LevelFilter::Error,
        _ => LevelFilter::Off,
    }
}

/// The level the environment asks for.
pub fn level_from_env() -> LevelFilter {
    let pick = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    pick("TF_LOG_PROVIDER")
        .or_else(|| pick("TF_LOG"))
        .map(|v| parse_level(&v))
        .unwrap_or(LevelFilter::Off)
}

/// Installs the logger once. Later calls do nothing.
pub fn init() {
    let level = level_from_env();
    if log::set_boxed_logger(Box::new(Hclog { level })).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_tf_log_words() {
        assert_eq!(parse_level("TRACE"), LevelFilter::Trace);
        assert_eq!(parse_level("json"), LevelFilter::Trace);
        assert_eq!(parse_level("Warn"), LevelFilter::Warn);
        assert_eq!(parse_level("off"), LevelFilter::Off);
        assert_eq!(parse_level("nonsense"), LevelFilter::Off);
    }

    #[test]
    fn request_signing_is_never_forwarded() {
        let logger = Hclog {
            level: LevelFilter::Trace,
        };
        let at = |target: &str| {
            logger.enabled(
                &Metadata::builder()
                    .level(log::Level::Error)
                    .target(target)
                    .build(),
            )
        };
        assert!(!at("aws_sigv4"));
        assert!(!at("aws_sigv4::http_request::sign"));
        assert!(at("aws_sigv4_other"));
        assert!(at("aws_smithy_runtime::client::orchestrator"));
        assert!(at("atmos_provider::provider::secret"));
    }

    #[test]
    fn other_crates_are_capped_at_info() {
        let logger = Hclog {
            level: LevelFilter::Trace,
        };
        let at = |level: log::Level, target: &str| {
            logger.enabled(&Metadata::builder().level(level).target(target).build())
        };
        assert!(at(log::Level::Trace, "atmos_provider::store::ssm"));
        assert!(at(log::Level::Trace, "terraform_provider_atmos"));
        assert!(!at(log::Level::Trace, "h2::codec"));
        assert!(!at(
            log::Level::Debug,
            "aws_smithy_runtime::client::orchestrator"
        ));
        assert!(!at(log::Level::Debug, "atmos_provider_lookalike"));
        assert!(at(log::Level::Info, "hyper_util::client"));
        assert!(at(log::Level::Warn, "rustls::conn"));
    }

    #[test]
    fn lines_are_hclog_json() {
        let args = format_args!("reading {}", "DB_PASSWORD");
        let record = Record::builder()
            .args(args)
            .level(log::Level::Debug)
            .target("atmos::provider")
            .build();
        let line = format_line(&record);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("json");
        assert_eq!(v["@level"], "debug");
        assert_eq!(v["@message"], "reading DB_PASSWORD");
        let ts = v["@timestamp"].as_str().expect("timestamp");
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
    }
}
