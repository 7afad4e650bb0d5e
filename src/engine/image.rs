//! Build contexts for the images `apply` builds: the node image (`prebuilt`: a host-built static
//! binary `FROM scratch`; `source`: the multi-stage Dockerfile over the workspace) and the local
//! Prometheus image assembled from the host's own Prometheus install. Each context is a tar held
//! in memory and named by its content hash, so an image is rebuilt only when its inputs change.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use sha2::{Digest, Sha256};

use super::arch::StaticBuild;
use crate::progress::Progress;

/// A build context ready to send to the engine.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// Image reference, `repository:tag`; the tag ends in the content hash.
    pub tag: String,
    /// The tar archive.
    pub tar: Vec<u8>,
}

/// Short hex SHA-256 of some bytes.
pub fn short_hash(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True when an ELF file has no program interpreter, i.e. runs `FROM scratch`.
pub fn is_static_elf(bytes: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 {
        return false; // not a 64-bit ELF
    }
    let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().expect("8 bytes")) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).all(|i| {
        let at = phoff + i * phentsize;
        bytes
            .get(at..at + 4)
            .is_some_and(|t| u32::from_le_bytes(t.try_into().expect("4 bytes")) != PT_INTERP)
    })
}

/// The workspace this binary was built from, when it is still there (a development checkout).
pub fn workspace_root() -> Option<PathBuf> {
    let mut dir = std::env::current_dir().ok();
    while let Some(d) = dir {
        if d.join("node/Cargo.toml").exists() && d.join("Cargo.toml").exists() {
            return Some(d);
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    built_from
        .join("node/Cargo.toml")
        .exists()
        .then_some(built_from)
}

/// Finds a statically linked `erlmcp-node` for this machine's CPU: `ERLMCP_NODE_BINARY`, else one
/// beside this program, else builds one in the workspace (`cargo build --release` with
/// `+crt-static`, a no-op when fresh).
pub fn static_node_binary(progress: &Progress) -> anyhow::Result<PathBuf> {
    let target = format!("{}-unknown-linux-gnu", std::env::consts::ARCH);
    static_node_binary_for(
        progress,
        &StaticBuild {
            target,
            linker: None,
        },
    )
}

/// A statically linked `erlmcp-node` for `build`'s target: for this machine's own target as
/// [`static_node_binary`] finds it; for another CPU always built with the cross linker.
pub fn static_node_binary_for(progress: &Progress, build: &StaticBuild) -> anyhow::Result<PathBuf> {
    if build.linker.is_some() {
        return cross_static_node_binary(progress, build);
    }
    if let Ok(path) = std::env::var("ERLMCP_NODE_BINARY") {
        let path = PathBuf::from(path);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("ERLMCP_NODE_BINARY={}", path.display()))?;
        if !is_static_elf(&bytes) {
            bail!(
                "ERLMCP_NODE_BINARY={} is dynamically linked; the image runs it FROM scratch, so build it with RUSTFLAGS=\"-C target-feature=+crt-static\"",
                path.display()
            );
        }
        return Ok(path);
    }
    if let Some(sibling) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("erlmcp-node")))
        && std::fs::read(&sibling).is_ok_and(|b| is_static_elf(&b))
    {
        return Ok(sibling);
    }
    let Some(root) = workspace_root() else {
        bail!(
            "no statically linked erlmcp-node found: set ERLMCP_NODE_BINARY or run from the erlmcp-gen workspace"
        );
    };
    let target = &build.target;
    // The whole workspace, exactly as scripts/lib.sh builds it: the same command reuses the same
    // artifacts (a `-p erlmcp-node` build unifies features differently and recompiles the
    // dependencies), so the quickstart and the tests share one static build.
    cargo_build(
        progress,
        &root,
        "erlmcp-node (static build)",
        &["--workspace", "--target", target],
        Some(STATIC_RUSTFLAGS),
    )?;
    Ok(target_dir(&root).join(target).join("release/erlmcp-node"))
}

/// Where Cargo builds: CARGO_TARGET_DIR when it is set (relative to the workspace), else `target`.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"))
}

/// `erlmcp-node` cross-built for another CPU with `build`'s linker (`rustup target add` and
/// Debian's `gcc-<arch>-linux-gnu` provide them).
fn cross_static_node_binary(progress: &Progress, build: &StaticBuild) -> anyhow::Result<PathBuf> {
    let root = workspace_root().ok_or_else(|| {
        anyhow::anyhow!(
            "building erlmcp-node for {} needs the erlmcp-gen workspace",
            build.target
        )
    })?;
    let linker = build.linker.as_deref().unwrap_or("cc");
    let flags = format!("{STATIC_RUSTFLAGS} -C linker={linker}");
    cargo_build_node(
        progress,
        &root,
        &format!("erlmcp-node (static build for {})", build.target),
        &["--target", &build.target],
        Some(&flags),
    )?;
    Ok(target_dir(&root)
        .join(&build.target)
        .join("release/erlmcp-node"))
}

/// `cargo build --release -p erlmcp-node` in the workspace (a no-op when fresh), reported as a
/// progress task; `rustflags` replaces RUSTFLAGS when given.
pub fn cargo_build_node(
    progress: &Progress,
    root: &Path,
    label: &str,
    extra_args: &[&str],
    rustflags: Option<&str>,
) -> anyhow::Result<()> {
    let args: Vec<&str> = ["-p", "erlmcp-node"]
        .into_iter()
        .chain(extra_args.iter().copied())
        .collect();
    cargo_build(progress, root, label, &args, rustflags)
}

/// RUSTFLAGS of the static build (scripts/lib.sh uses the same).
pub const STATIC_RUSTFLAGS: &str = "-C target-feature=+crt-static";

/// `cargo build --release ARGS` in the workspace, reported as a progress task.
fn cargo_build(
    progress: &Progress,
    root: &Path,
    label: &str,
    args: &[&str],
    rustflags: Option<&str>,
) -> anyhow::Result<()> {
    let task = progress.task(label);
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command
        .current_dir(root)
        .args(["build", "--release", "--quiet"])
        .args(args);
    if let Some(flags) = rustflags {
        command.env("RUSTFLAGS", flags);
    }
    task.step(format!("cargo build --release {}", args.join(" ")));
    let output = command
        .output()
        .context("running cargo to build erlmcp-node")?;
    if !output.status.success() {
        task.failed("cargo build failed");
        bail!(
            "building erlmcp-node failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    task.done("ready");
    Ok(())
}

fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0); // fixed, so equal inputs give equal archives
    header.set_cksum();
    builder.append_data(&mut header, path, bytes)?;
    Ok(())
}

/// The `prebuilt` node image: the rendered `Dockerfile.prebuilt` and the static binary.
pub fn prebuilt_node_context(
    repository: &str,
    version: &str,
    dockerfile: &str,
    binary: &Path,
) -> anyhow::Result<BuildContext> {
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let hash = short_hash(&[dockerfile.as_bytes(), &bytes]);
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
    append(&mut builder, "erlmcp-node", &bytes, 0o755)?;
    Ok(BuildContext {
        tag: format!("{repository}:{version}-{hash}"),
        tar: builder.into_inner()?,
    })
}

/// The `source` node image: the workspace's sources and the rendered multi-stage `Dockerfile`.
pub fn source_node_context(
    repository: &str,
    version: &str,
    dockerfile: &str,
    root: &Path,
) -> anyhow::Result<BuildContext> {
    let hash = workspace_context(dockerfile, root)?;
    Ok(BuildContext {
        tag: format!("{repository}:{version}-{}", hash.0),
        tar: hash.1,
    })
}

/// The stress-worker image built from the workspace in the Rust `builder` image, for hosts
/// whose own `erlmcp-gen` cannot run in the engine (macOS with Colima or Docker Desktop).
pub fn source_stress_worker_context(builder: &str, root: &Path) -> anyhow::Result<BuildContext> {
    let dockerfile = source_stress_worker_dockerfile(builder);
    let (hash, tar) = workspace_context(&dockerfile, root)?;
    Ok(BuildContext {
        tag: format!("erlmcp-stress-worker:src-{hash}"),
        tar,
    })
}

/// The Dockerfile of [`source_stress_worker_context`].
fn source_stress_worker_dockerfile(builder: &str) -> String {
    // The builder comes from the cluster file: an escaped ARG keeps even an unvalidated one from
    // adding instructions, as in the rendered Dockerfile.
    let builder = crate::render::escape::docker_arg(builder);
    format!(
        "# Built by erlmcp-gen from its workspace: the load-generator workers of `stress`.\n\
         ARG BUILDER_IMAGE={builder}\nFROM ${{BUILDER_IMAGE}} AS build\nWORKDIR /src\nCOPY . .\n\
         RUN RUSTFLAGS=\"-C target-feature=+crt-static\" \\\n    \
         cargo build --release --locked -p erlmcp-gen --bin erlmcp-gen --target \"$(uname -m)-unknown-linux-gnu\" \\\n \
         && cp \"target/$(uname -m)-unknown-linux-gnu/release/erlmcp-gen\" /erlmcp-gen\n\n\
         FROM scratch\nCOPY --from=build /erlmcp-gen /bin/erlmcp-gen\nUSER 65534:65534\n\
         ENTRYPOINT [\"/bin/erlmcp-gen\", \"stress-worker\"]\n"
    )
}

/// A tar of `dockerfile` and the workspace's sources, and its content hash.
fn workspace_context(dockerfile: &str, root: &Path) -> anyhow::Result<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for top in ["Cargo.toml", "Cargo.lock", "src", "node", "templates"] {
        collect_files(root, &root.join(top), &mut files)?;
    }
    files.sort();
    let mut parts: Vec<Vec<u8>> = vec![dockerfile.as_bytes().to_vec()];
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
    for relative in &files {
        let bytes = std::fs::read(root.join(relative))?;
        append(&mut builder, relative, &bytes, 0o644)?;
        parts.push(relative.as_bytes().to_vec());
        parts.push(bytes);
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok((short_hash(&refs), builder.into_inner()?))
}

fn collect_files(root: &Path, path: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    if path.is_file() {
        let relative = path.strip_prefix(root)?.to_string_lossy().into_owned();
        out.push(relative);
    } else if path.is_dir() {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_name() != "target" {
                collect_files(root, &entry.path(), out)?;
            }
        }
    }
    Ok(())
}

/// The host's Prometheus binary, if installed (Debian's `prometheus` package).
pub fn host_prometheus() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("prometheus"))
            .find(|candidate| candidate.is_file())
    })
}

/// Shared libraries a dynamically linked binary loads, as `ldd` reports them.
fn shared_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut libraries = Vec::new();
    for line in text.lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// The repository of the Prometheus image built from the host's install.
pub const LOCAL_PROMETHEUS_REPOSITORY: &str = "erlmcp-prometheus-local";
/// Where that image carries the static `erlmcp-node` its health check runs (it has no shell).
pub const PROMETHEUS_HEALTHCHECK_BINARY: &str = "/bin/erlmcp-node";

/// A Prometheus image assembled from the host's install: the binary, the libraries it links, a
/// data directory owned by `nobody`, and the static `erlmcp-node` (`healthcheck` is its
/// health check: the image has no shell or wget), `FROM scratch`. For machines that cannot pull
/// images.
pub fn local_prometheus_context(binary: &Path, static_node: &Path) -> anyhow::Result<BuildContext> {
    let dockerfile = "# Built by erlmcp-gen from the host's Prometheus install (no registry needed).\n\
        FROM scratch\nCOPY rootfs/ /\nCOPY --chown=65534:65534 data/ /prometheus/\nUSER 65534:65534\n\
        EXPOSE 9090\nENTRYPOINT [\"/bin/prometheus\"]\n";
    let node =
        std::fs::read(static_node).with_context(|| format!("reading {}", static_node.display()))?;
    let node_inside = format!("rootfs{PROMETHEUS_HEALTHCHECK_BINARY}");
    host_program_context(
        LOCAL_PROMETHEUS_REPOSITORY,
        dockerfile,
        binary,
        "bin/prometheus",
        &[
            ("data/.keep", b"", 0o644),
            ("rootfs/etc/prometheus/.keep", b"", 0o644),
            (&node_inside, &node, 0o755),
        ],
    )
}

/// The image `stress` runs its in-network workers from: this very `erlmcp-gen` binary and the
/// libraries it links, `FROM scratch`, so it needs neither a registry nor the source tree.
pub fn stress_worker_context(binary: &Path) -> anyhow::Result<BuildContext> {
    if !runs_in_linux_container(binary) {
        bail!(
            "stress workers in containers run this erlmcp-gen binary ({}), which is not a Linux \
             program; use `--workers host`, or run erlmcp-gen inside the engine's Linux VM",
            binary.display()
        );
    }
    let dockerfile = "# Built by erlmcp-gen from its own binary: the load-generator workers of `stress`.\n\
        FROM scratch\nCOPY rootfs/ /\nUSER 65534:65534\n\
        ENTRYPOINT [\"/bin/erlmcp-gen\", \"stress-worker\"]\n";
    host_program_context(
        "erlmcp-stress-worker",
        dockerfile,
        binary,
        "bin/erlmcp-gen",
        &[],
    )
}

/// True when `binary` is a Linux ELF program this host runs, i.e. one a Linux engine can run
/// from its files (the engine's CPU architecture is assumed to be this host's).
pub fn runs_in_linux_container(binary: &Path) -> bool {
    cfg!(target_os = "linux")
        && std::fs::read(binary).is_ok_and(|bytes| bytes.starts_with(b"\x7fELF"))
}

/// An image of one host program: `binary` at `rootfs/<inside>`, every shared library it links
/// at its host path under `rootfs/`, plus `extra` files; tagged `repository:<content hash>`.
fn host_program_context(
    repository: &str,
    dockerfile: &str,
    binary: &Path,
    inside: &str,
    extra: &[(&str, &[u8], u32)],
) -> anyhow::Result<BuildContext> {
    let bytes = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, "Dockerfile", dockerfile.as_bytes(), 0o644)?;
    append(&mut builder, &format!("rootfs/{inside}"), &bytes, 0o755)?;
    for (path, contents, mode) in extra {
        append(&mut builder, path, contents, *mode)?;
    }
    let mut parts = vec![dockerfile.as_bytes().to_vec(), bytes];
    parts.extend(extra.iter().map(|(_, contents, _)| contents.to_vec()));
    // A static binary has no libraries (ldd says "not a dynamic executable").
    let libraries = if is_static_elf(&parts[1]) {
        Vec::new()
    } else {
        shared_libraries(binary)?
    };
    for library in libraries {
        let resolved = std::fs::canonicalize(&library)?;
        let lib_bytes = std::fs::read(&resolved)?;
        let inside = format!("rootfs{}", library.display());
        append(&mut builder, &inside, &lib_bytes, 0o755)?;
        parts.push(lib_bytes);
    }
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    Ok(BuildContext {
        tag: format!("{repository}:{}", short_hash(&refs)),
        tar: builder.into_inner()?,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_hostile_builder_cannot_add_instructions_to_the_worker_dockerfile() {
        let dockerfile = source_stress_worker_dockerfile("rust:1\nRUN touch /x");
        assert!(
            !dockerfile.lines().any(|line| line.starts_with("RUN touch")),
            "{dockerfile}"
        );
        assert!(dockerfile.contains("ARG BUILDER_IMAGE=\"rust:1\\u000aRUN touch /x\"\n"));
    }

    use super::*;

    #[test]
    fn this_test_binary_is_recognised_as_dynamic_and_garbage_as_not_static() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_elf(&me), "test binaries link libc dynamically");
        assert!(!is_static_elf(b"#!/bin/sh\n"));
    }

    #[test]
    fn equal_inputs_give_equal_tags_and_different_ones_differ() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("erlmcp-node");
        std::fs::write(&binary, b"one").unwrap();
        let a = prebuilt_node_context("erlmcp-node", "1.0", "FROM scratch\n", &binary).unwrap();
        let b = prebuilt_node_context("erlmcp-node", "1.0", "FROM scratch\n", &binary).unwrap();
        assert_eq!((a.tag.clone(), a.tar.clone()), (b.tag, b.tar));
        std::fs::write(&binary, b"two").unwrap();
        let c = prebuilt_node_context("erlmcp-node", "1.0", "FROM scratch\n", &binary).unwrap();
        assert_ne!(a.tag, c.tag);
        assert!(a.tag.starts_with("erlmcp-node:1.0-"));
    }

    #[test]
    fn the_source_worker_image_builds_erlmcp_gen_statically_from_the_workspace() {
        let root = workspace_root().expect("tests run in the workspace");
        let a = source_stress_worker_context("rust:1-bookworm", &root).unwrap();
        assert!(a.tag.starts_with("erlmcp-stress-worker:src-"), "{}", a.tag);
        let mut archive = tar::Archive::new(a.tar.as_slice());
        let mut dockerfile = String::new();
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if name == "Dockerfile" {
                std::io::Read::read_to_string(&mut entry, &mut dockerfile).unwrap();
            }
            names.push(name);
        }
        assert!(dockerfile.starts_with("# Built by erlmcp-gen"));
        assert!(
            dockerfile
                .contains("ARG BUILDER_IMAGE=\"rust:1-bookworm\"\nFROM ${BUILDER_IMAGE} AS build")
        );
        assert!(dockerfile.contains("+crt-static"));
        assert!(dockerfile.contains("-p erlmcp-gen --bin erlmcp-gen"));
        assert!(dockerfile.contains("ENTRYPOINT [\"/bin/erlmcp-gen\", \"stress-worker\"]"));
        for needed in ["Cargo.lock", "src/main.rs", "node/Cargo.toml"] {
            assert!(names.iter().any(|n| n == needed), "{needed} in the context");
        }
        assert!(!names.iter().any(|n| n.starts_with("target/")));
        // A different builder is a different image.
        let b = source_stress_worker_context("rust:1-slim", &root).unwrap();
        assert_ne!(a.tag, b.tag);
    }

    #[test]
    fn a_worker_image_needs_a_linux_program() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("erlmcp-gen");
        std::fs::write(&script, b"#!/bin/sh\n").unwrap();
        let error = stress_worker_context(&script).unwrap_err().to_string();
        assert!(error.contains("--workers host"), "{error}");
    }
}
