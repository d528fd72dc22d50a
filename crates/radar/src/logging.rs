//! Logging for every `radar` process: one line per CWMP session and per USP connection, the
//! real events at info, and chatty dependencies held at warn so they do not drown them.

/// What runs when neither `RUST_LOG` nor `RADAR_LOG` says otherwise. openraft logs several
/// INFO lines per second per group (elections, heartbeats, log ids); the rest are libraries
/// whose INFO lines are about their own plumbing.
pub const DEFAULT_FILTER: &str =
    "info,openraft=warn,sled=warn,hyper=warn,h2=warn,tower=warn,tonic=warn,rumqttc=warn,tungstenite=warn,tokio_tungstenite=warn,reqwest=warn,rustls=warn";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// The filter: `RUST_LOG`, else `RADAR_LOG`, else [`DEFAULT_FILTER`].
fn filter() -> tracing_subscriber::EnvFilter {
    ["RUST_LOG", "RADAR_LOG"]
        .iter()
        .find_map(|var| tracing_subscriber::EnvFilter::try_from_env(var).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new(DEFAULT_FILTER))
}

pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_filter_parses_and_quiets_openraft() {
        let filter = tracing_subscriber::EnvFilter::new(super::DEFAULT_FILTER);
        let text = filter.to_string();
        assert!(text.contains("openraft=warn"), "{text}");
    }
}
