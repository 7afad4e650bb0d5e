//! `validate --host` reads a remote engine's machine from the engine's info API. Checked against
//! the local engine, whose machine is this one: its CPUs and memory are this machine's. Needs
//! Docker (run under `flock /tmp/erlmcp-docker.lock`, as every Docker test).

mod cluster_support;

use std::path::PathBuf;

#[test]
fn the_engines_info_api_gives_the_cpus_memory_and_kernel_of_the_machine_it_runs_on() {
    if !cluster_support::docker_available() {
        return;
    }
    let socket = PathBuf::from("/var/run/docker.sock");
    let (cpus, memory, kernel) = erlmcp_gen::host::engine_machine(&socket).unwrap();
    let local = erlmcp_gen::host::read_facts_at(socket);
    assert_eq!(cpus, local.cpus, "the local engine runs on this machine");
    let memory = memory.expect("MemTotal").0;
    let here = local.memory.expect("/proc/meminfo").0;
    // The engine reports MemTotal in bytes from the same /proc/meminfo (KiB) this machine reads.
    assert_eq!(memory / 1024, here / 1024);
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(kernel.as_deref(), Some(release.trim()));
}

/// An image of the static node binary, as the prebuilt path makes it (built once per run).
fn node_image() -> String {
    let progress = erlmcp_gen::progress::Progress::new(true);
    let binary = erlmcp_gen::engine::image::static_node_binary(&progress).unwrap();
    let context = tempfile::tempdir().unwrap();
    std::fs::copy(&binary, context.path().join("erlmcp-node")).unwrap();
    std::fs::write(
        context.path().join("Dockerfile"),
        "FROM scratch\nCOPY erlmcp-node /usr/local/bin/erlmcp-node\nUSER 10001:10001\nENTRYPOINT [\"/usr/local/bin/erlmcp-node\"]\n",
    )
    .unwrap();
    let tag = "erlmcp-probe-test:local";
    let built = std::process::Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(context.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{built:?}");
    tag.to_string()
}

#[test]
fn a_probe_container_reads_the_open_file_limit_a_node_container_gets() {
    if !cluster_support::docker_available() {
        return;
    }
    let socket = PathBuf::from("/var/run/docker.sock");
    let image = node_image();
    let limits = erlmcp_gen::engine_probe::probe(&socket, &image, 4321).unwrap();
    assert_eq!(limits.nofile, Some((4321, 4321)));
    assert_eq!(limits.arch, std::env::consts::ARCH);
    let here = std::fs::read_to_string("/proc/sys/fs/file-max").unwrap();
    assert_eq!(limits.file_max, here.trim().parse().ok(), "the same kernel");
    // A fresh network namespace: the port range is the kernel's default, whatever this one says.
    assert!(limits.ephemeral_ports.is_some() && limits.somaxconn.is_some());

    let missing =
        erlmcp_gen::engine_probe::probe(&socket, "erlmcp-no-such-image:0", 1000).unwrap_err();
    assert!(
        missing.message.contains("not on the engine yet"),
        "{missing:?}"
    );

    // The engine's own limit (dockerd's) bounds what a container may be given.
    let dockerd = erlmcp_gen::host::dockerd_nofile_hard().unwrap_or(u64::MAX);
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if dockerd < nr_open {
        match erlmcp_gen::engine_probe::probe(&socket, &image, dockerd + 1) {
            Err(refused) => assert!(refused.nofile_refused, "{refused:?}"),
            // A dockerd that may raise its own limit (CAP_SYS_RESOURCE) grants it.
            Ok(limits) => assert_eq!(limits.nofile, Some((dockerd + 1, dockerd + 1))),
        }
    }
    let leftovers = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=erlmcp.probe"])
        .output()
        .unwrap();
    assert!(
        leftovers.stdout.is_empty(),
        "the probe containers are removed"
    );
}
