//! The process's open-file limit against what the config needs: every TCP session, HTTP
//! connection and probe slot is a descriptor, plus a fixed reserve for the node's own files (a
//! Streamable HTTP session is not: it lives in a table, and its connections are the HTTP
//! connections). At start the node raises its soft `RLIMIT_NOFILE` toward the hard one as far as
//! it needs, and when even that is too little it caps TCP sessions below `max_connections` (with
//! a warning) rather than fail at accept time, when `/health` would time out along with
//! everything else.

use crate::config::NodeConfig;

/// Descriptors the node holds besides connections: listeners, epoll, stdio, the peer client's
/// pool, a refused connection being told why, log files of an embedder.
pub const RESERVED_FDS: u64 = 64;

/// What the node does about its open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdPlan {
    /// The soft limit to run with (raised within the hard one when more is needed).
    pub soft_limit: u64,
    /// TCP sessions that fit it (at most `max_connections`).
    pub max_connections: usize,
    /// Descriptors the configuration needs at most.
    pub needed: u64,
}

impl FdPlan {
    /// True when TCP sessions had to be capped below `max_connections`.
    pub fn clamped(&self, config: &NodeConfig) -> bool {
        self.max_connections < config.max_connections
    }
}

/// The plan for `config` under limits `soft` and `hard` (pure; [`apply`] reads and sets them).
pub fn plan(config: &NodeConfig, soft: u64, hard: u64) -> FdPlan {
    let others = (config.max_http_connections as u64)
        .saturating_add(config.probe_connections as u64)
        .saturating_add(RESERVED_FDS);
    let needed = (config.max_connections as u64).saturating_add(others);
    let soft_limit = needed.min(hard).max(soft);
    let room = soft_limit.saturating_sub(others);
    let max_connections = usize::try_from(room)
        .unwrap_or(usize::MAX)
        .min(config.max_connections);
    FdPlan {
        soft_limit,
        max_connections,
        needed,
    }
}

/// Reads the limit, raises the soft one as far as the config needs, and caps
/// `config.max_tcp_sessions` at what fits, warning when that is below `max_connections`. Where the limit cannot be read,
/// the config is left as it is.
pub fn apply(config: &mut NodeConfig) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        tracing::warn!("cannot read RLIMIT_NOFILE; max_connections left unchecked");
        return;
    };
    let mut fd_plan = plan(config, soft, hard);
    if fd_plan.soft_limit > soft
        && setrlimit(Resource::RLIMIT_NOFILE, fd_plan.soft_limit, hard).is_err()
    {
        fd_plan = plan(config, soft, soft);
    }
    if fd_plan.clamped(config) {
        tracing::warn!(
            max_connections = config.max_connections,
            clamped_to = fd_plan.max_connections,
            open_file_limit = fd_plan.soft_limit,
            needed = fd_plan.needed,
            "max_connections + max_http_connections + probe_connections + {RESERVED_FDS} exceed the open-file limit; capping TCP sessions (Streamable HTTP sessions hold no descriptor)"
        );
    }
    config.max_tcp_sessions = fd_plan.max_connections;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(max_connections: usize) -> NodeConfig {
        let mut config = NodeConfig::for_tests();
        config.max_connections = max_connections;
        config.max_http_connections = 256;
        config.probe_connections = 16;
        config
    }

    #[test]
    fn a_config_that_fits_is_left_alone_and_the_soft_limit_raised_only_as_needed() {
        let plan = plan(&config(19_000), 1_024, 20_000);
        assert_eq!(plan.max_connections, 19_000);
        assert_eq!(plan.soft_limit, 19_000 + 256 + 16 + RESERVED_FDS);
    }

    #[test]
    fn the_default_on_a_20000_file_machine_is_clamped_below_the_hard_limit() {
        let config = config(25_000);
        let plan = plan(&config, 20_000, 20_000);
        assert!(plan.clamped(&config));
        assert_eq!(
            plan.max_connections,
            20_000 - 256 - 16 - RESERVED_FDS as usize
        );
        assert_eq!(plan.soft_limit, 20_000);
    }

    #[test]
    fn a_tiny_limit_leaves_no_sessions_rather_than_underflowing() {
        let plan = plan(&config(100), 100, 100);
        assert_eq!(plan.max_connections, 0);
    }

    #[test]
    fn an_unlimited_hard_limit_raises_the_soft_one_to_the_need() {
        let plan = plan(&config(50_000), 1_024, u64::MAX);
        assert_eq!(plan.max_connections, 50_000);
        assert_eq!(plan.soft_limit, 50_000 + 256 + 16 + RESERVED_FDS);
    }
}
