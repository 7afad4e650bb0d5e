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
