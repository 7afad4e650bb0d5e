//! The cluster secret on the host: the one file every node reads to authenticate heartbeats.
//!
//! `apply` keeps it at `<state dir>/secret/cluster-secret` (see [`stored_path`]): a copy of the
//! file the cluster file names (`[cluster] secret_file`), else 32 random bytes as 64 hex
//! digits, made once and kept across applies. Native nodes get its path; Docker containers get
//! it bind-mounted read-only at [`CONTAINER_SECRET_PATH`] (where compose's file-based secrets,
//! Swarm secrets and a Kubernetes Secret mount put it too). Its value is never in an
//! environment variable, a label or a config hash, so re-applying changes nothing.
//!
//! Permissions: the directory is 0700 (only the user running `erlmcp-gen` reaches the file)
//! and the file 0444, because the nodes in containers run as uid 10001, which must read the
//! bind mount and owns nothing on the host.

use std::path::{Path, PathBuf};

use crate::config::model::Cluster;

/// Where a container reads the cluster secret (compose, Swarm and Kubernetes alike).
pub use crate::deploy_spec::CONTAINER_SECRET_PATH;

/// The node refuses secrets shorter than this many bytes (whitespace trimmed).
pub const MIN_SECRET_BYTES: usize = 32;

/// Where `apply` keeps the secret of the cluster called `cluster`.
pub fn stored_path(cluster: &str) -> PathBuf {
    super::native::state_dir(cluster)
        .join("secret")
        .join("cluster-secret")
}

/// 32 random bytes from the operating system, as 64 lowercase hex digits and a newline.
pub fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness for the cluster secret: {e}"))?;
    let mut text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    text.push('\n');
    Ok(text)
}

/// Makes sure the cluster's secret is stored, and returns its path: the named file's content
/// (copied when it changed), else the stored one, else a new one.
pub fn ensure(cluster: &Cluster) -> anyhow::Result<PathBuf> {
    let path = stored_path(&cluster.name);
    ensure_at(cluster.secret_file.as_deref(), &path)?;
    Ok(path)
}

fn ensure_at(named: Option<&Path>, path: &Path) -> anyhow::Result<()> {
    let wanted = match named {
        Some(named) => Some(read_named(named)?),
        None => None,
    };
    let stored = std::fs::read_to_string(path).ok();
    let content = match (wanted, stored) {
        (Some(wanted), Some(stored)) if wanted == stored => return Ok(()),
        (Some(wanted), _) => wanted,
        (None, Some(_)) => return Ok(()),
        (None, None) => generate()?,
    };
    write_private(path, &content)
}

/// Deletes the stored secret; true when there was one.
pub fn remove(cluster: &str) -> anyhow::Result<bool> {
    let path = stored_path(cluster);
    let Some(dir) = path.parent() else {
        return Ok(false);
    };
    if !dir.exists() {
        return Ok(false);
    }
    std::fs::remove_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("removing the cluster secret {}: {e}", dir.display()))?;
    Ok(true)
}

fn read_named(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the cluster secret file {} ([cluster] secret_file): {e}",
            path.display()
        )
    })?;
    let length = text.trim().len();
    anyhow::ensure!(
        length >= MIN_SECRET_BYTES,
        "the cluster secret file {} has {length} bytes; nodes need at least {MIN_SECRET_BYTES} \
         (e.g. `head -c32 /dev/urandom | base64 > {}`)",
        path.display(),
        path.display()
    );
    Ok(text)
}

/// Writes `content` to `path` as 0444 inside a 0700 directory, replacing what was there.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().expect("the secret lives in a directory");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    // Write beside and rename, so a reader never sees half a secret.
    let partial = dir.join(".cluster-secret.partial");
    let _ = std::fs::remove_file(&partial);
    std::fs::write(&partial, content)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", partial.display()))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o444))?;
    std::fs::rename(&partial, path)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_generated_secret_is_64_hex_digits_and_never_the_same_twice() {
        let a = generate().unwrap();
        assert_eq!(a.trim().len(), 64);
        assert!(a.trim().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, generate().unwrap());
    }

    #[test]
    fn writes_are_private_and_replace_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/secret/cluster-secret");
        write_private(&path, "one\n").unwrap();
        write_private(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert_eq!(mode(&path), 0o444);
    }

    #[test]
    fn a_secret_is_made_once_and_kept_and_a_named_one_is_copied_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/secret/cluster-secret");
        ensure_at(None, &path).unwrap();
        let made = std::fs::read_to_string(&path).unwrap();
        ensure_at(None, &path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), made);
        assert_eq!(mode(&path), 0o444);

        let named = dir.path().join("named");
        std::fs::write(&named, format!("{}\n", "n".repeat(40))).unwrap();
        ensure_at(Some(&named), &path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            "n".repeat(40)
        );
        std::fs::write(&named, format!("{}\n", "m".repeat(40))).unwrap();
        ensure_at(Some(&named), &path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap().trim(),
            "m".repeat(40)
        );
    }

    #[test]
    fn the_cluster_file_names_its_secret_relative_to_itself() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clusters/local.toml"))
                .unwrap()
                .replacen(
                    "[cluster]\n",
                    "[cluster]\nsecret_file = \"secrets/cluster\"\n",
                    1,
                );
        let (cluster, _) = crate::config::parse("clusters/local.toml", &text).unwrap();
        assert_eq!(
            cluster.secret_file.as_deref(),
            Some(Path::new("clusters/secrets/cluster"))
        );
        let (unnamed, _) = crate::config::parse(
            "clusters/local.toml",
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/clusters/local.toml"))
                .unwrap(),
        )
        .unwrap();
        assert_eq!(unnamed.secret_file, None);
    }

    #[test]
    fn a_named_secret_file_must_be_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let short = dir.path().join("short");
        std::fs::write(&short, "tiny\n").unwrap();
        let error = read_named(&short).unwrap_err().to_string();
        assert!(error.contains("has 4 bytes"), "{error}");
        assert!(!error.contains("tiny"), "{error}");
        let missing = read_named(&dir.path().join("missing")).unwrap_err();
        assert!(missing.to_string().contains("secret_file"), "{missing}");
    }
}
