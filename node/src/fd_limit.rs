//! The process's open-file limit against what the config needs. TCP sessions and the API
//! port's HTTP connections are descriptors drawn from one shared pool (a Streamable HTTP session
//! is not: it lives in a table, and its connections are the HTTP connections); the probe lane and
//! a fixed reserve for the node's own files come off the top. At start the node raises its soft
//! `RLIMIT_NOFILE` toward the hard one as far as it needs and sizes the pool to what is left, so
//! a full node refuses a connection at accept time with a reason instead of failing `accept`
//! with `EMFILE`, when `/health` would time out along with everything else.

use crate::config::NodeConfig;

/// Descriptors the node holds besides connections: listeners, epoll, stdio, the peer client's
/// pool, a refused connection being told why, log files of an embedder.
pub const RESERVED_FDS: u64 = 64;

/// What the node does about its open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdPlan {
    /// The soft limit to run with (raised within the hard one when more is needed).
    pub soft_limit: u64,
    /// Descriptors TCP sessions and HTTP connections share.
    pub connection_descriptors: usize,
    /// Descriptors the configuration needs at most.
    pub needed: u64,
}

impl FdPlan {
    /// True when the pool cannot hold `max_connections` TCP sessions: the node fills before its
    /// session capacity does.
    pub fn clamped(&self, config: &NodeConfig) -> bool {
        self.connection_descriptors < config.max_connections
    }
}

/// The plan for `config` under limits `soft` and `hard` (pure; [`apply`] reads and sets them).
pub fn plan(config: &NodeConfig, soft: u64, hard: u64) -> FdPlan {
    let fixed = (config.probe_connections as u64).saturating_add(RESERVED_FDS);
    // At most every session on TCP plus every HTTP connection slot taken at once.
    let needed = (config.max_connections as u64)
        .saturating_add(config.max_http_connections as u64)
        .saturating_add(fixed);
    let soft_limit = needed.min(hard).max(soft);
    let connection_descriptors = usize::try_from(soft_limit.saturating_sub(fixed))
        .unwrap_or(usize::MAX)
        .min(
            config
                .max_connections
                .saturating_add(config.max_http_connections),
        );
    FdPlan {
        soft_limit,
        connection_descriptors,
        needed,
    }
}

/// Reads the limit, raises the soft one as far as the config needs, and sizes
/// `config.connection_descriptors`, warning when it is below `max_connections`. Where the limit
/// cannot be read, the config is left as it is.
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
            clamped_to = fd_plan.connection_descriptors,
            open_file_limit = fd_plan.soft_limit,
            needed = fd_plan.needed,
            "the open-file limit leaves fewer descriptors than max_connections: TCP sessions and HTTP connections together stop there (Streamable HTTP sessions hold no descriptor of their own)"
        );
    }
    config.connection_descriptors = fd_plan.connection_descriptors;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node configured the way the engines start it: as many HTTP connection slots as sessions.
    fn config(max_connections: usize) -> NodeConfig {
        let mut config = NodeConfig::for_tests();
        config.max_connections = max_connections;
        config.max_http_connections = max_connections;
        config.probe_connections = 16;
        config
    }

    #[test]
    fn a_config_that_fits_is_left_alone_and_the_soft_limit_raised_only_as_needed() {
        let plan = plan(&config(9_000), 1_024, 20_000);
        assert_eq!(plan.connection_descriptors, 18_000);
        assert_eq!(plan.soft_limit, 18_000 + 16 + RESERVED_FDS);
        assert!(!plan.clamped(&config(9_000)));
    }

    #[test]
    fn tcp_sessions_and_http_connections_share_one_pool_rather_than_each_reserving_a_share() {
        // 17,000 sessions a node on a 20,000-file machine (clusters/bench-100k.toml): both
        // transports together need more than the limit, yet either alone fits in the pool.
        let config = config(17_000);
        let plan = plan(&config, 20_000, 20_000);
        assert_eq!(plan.soft_limit, 20_000);
        assert_eq!(
            plan.connection_descriptors,
            20_000 - 16 - RESERVED_FDS as usize
        );
        assert!(!plan.clamped(&config), "17,000 TCP sessions still fit");
    }

    #[test]
    fn the_default_on_a_20000_file_machine_is_clamped_below_the_hard_limit() {
        let config = config(25_000);
        let plan = plan(&config, 20_000, 20_000);
        assert!(plan.clamped(&config));
        assert_eq!(
            plan.connection_descriptors,
            20_000 - 16 - RESERVED_FDS as usize
        );
        assert_eq!(plan.soft_limit, 20_000);
    }

    #[test]
    fn a_tiny_limit_leaves_no_connections_rather_than_underflowing() {
        let plan = plan(&config(100), 50, 50);
        assert_eq!(plan.connection_descriptors, 0);
    }

    #[test]
    fn an_unlimited_hard_limit_raises_the_soft_one_to_the_need() {
        let plan = plan(&config(50_000), 1_024, u64::MAX);
        assert_eq!(plan.connection_descriptors, 100_000);
        assert_eq!(plan.soft_limit, 100_000 + 16 + RESERVED_FDS);
    }
}
