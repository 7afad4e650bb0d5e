//! The images under `[swarm] registry`: each locally built (or present) image is tagged into
//! the registry, pushed through the engine, and handed to Swarm as `repo:tag@sha256:<digest>`,
//! so every engine pulls the very bytes that were pushed (a tag can move; a digest cannot).
//! Credentials, when the registry needs them, come from the Docker client's `config.json`
//! `auths` (see [`credentials_for`]); they go to the engine in request headers only and are
//! never printed or written by us.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{anyhow, bail};
use base64::Engine as _;
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::StreamExt as _;

use super::{SwarmEngine, engine_error};
use crate::progress::Task;

/// One image to push: the local reference and the one under the registry (`repo:tag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The reference the engine has the image by.
    pub local: String,
    /// `<registry>/<name>:<tag>`.
    pub pushed: String,
}

/// A registry login read from `config.json`. Debug never shows the secret parts.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryLogin {
    /// The `auths` key it was found under.
    pub server: String,
    username: Option<String>,
    password: Option<String>,
    identity_token: Option<String>,
}

impl std::fmt::Debug for RegistryLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryLogin")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl RegistryLogin {
    /// The engine's form of it (sent as the `X-Registry-Auth` header).
    pub fn credentials(&self) -> DockerCredentials {
        DockerCredentials {
            username: self.username.clone(),
            password: self.password.clone(),
            identitytoken: self.identity_token.clone(),
            serveraddress: Some(self.server.clone()),
            ..Default::default()
        }
    }
}

/// `repo` and `tag` of a `repo:tag` reference (the registry's `:port` is before a `/`).
pub fn split_tag(reference: &str) -> (&str, &str) {
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (reference, "latest"),
    }
}

/// The digest in the engine's last push message (`<tag>: digest: sha256:<hex> size: <n>`).
pub fn digest_in_push_status(status: &str) -> Option<&str> {
    let digest = status.split("digest: ").nth(1)?.split_whitespace().next()?;
    let (algorithm, hex) = digest.split_once(':')?;
    (algorithm == "sha256" && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(digest)
}

/// The reference a service pulls: `repo:tag@digest`.
pub fn digest_reference(pushed: &str, digest: &str) -> String {
    format!("{pushed}@{digest}")
}

/// The registry's host (`host[:port]`), the first component of `[swarm] registry`.
pub fn registry_host(registry: &str) -> &str {
    registry.split('/').next().unwrap_or(registry)
}

/// The host an `auths` key names: `https://r.io/v1/` → `r.io`; Docker Hub's several spellings
/// are one.
fn auths_key_host(key: &str) -> &str {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io",
        other => other,
    }
}

/// What `config.json` says about the registry at `host`.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// A login in `auths`.
    Found(RegistryLogin),
    /// No login: the registry is pushed to (and pulled from) anonymously.
    None,
    /// The login is kept by a credential helper (`credsStore`, `credHelpers`), which we do
    /// not run: pushed anonymously, with a warning.
    InHelper(String),
}

/// The login for `host` in the text of a Docker client `config.json`.
pub fn credentials_for(config_json: &str, host: &str) -> anyhow::Result<Login> {
    let config: serde_json::Value = serde_json::from_str(config_json)
        .map_err(|e| anyhow!("the Docker client's config.json is not JSON: {e}"))?;
    let wanted = auths_key_host(host);
    let entry = config["auths"]
        .as_object()
        .and_then(|auths| auths.iter().find(|(key, _)| auths_key_host(key) == wanted));
    if let Some((server, entry)) = entry {
        let text = |field: &str| {
            entry[field]
                .as_str()
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        let (mut username, mut password) = (text("username"), text("password"));
        if let Some(auth) = text("auth") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok());
            // Name only the key: the value is a secret.
            let Some((user, pass)) = decoded.as_deref().and_then(|d| d.split_once(':')) else {
                bail!(
                    "the Docker client's config.json has an `auth` for {server} that is not base64 of `user:password`"
                );
            };
            username = Some(user.to_string());
            password = Some(pass.to_string());
        }
        let identity_token = text("identitytoken");
        if username.is_some() || identity_token.is_some() {
            return Ok(Login::Found(RegistryLogin {
                server: server.clone(),
                username,
                password,
                identity_token,
            }));
        }
    }
    let helper = config["credHelpers"]
        .as_object()
        .and_then(|helpers| {
            helpers
                .iter()
                .find(|(key, _)| auths_key_host(key) == wanted)
                .and_then(|(_, helper)| helper.as_str())
        })
        .or_else(|| config["credsStore"].as_str())
        .filter(|helper| !helper.is_empty());
    Ok(match helper {
        Some(helper) => Login::InHelper(helper.to_string()),
        None => Login::None,
    })
}

/// The Docker client's `config.json`: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
fn client_config_path() -> Option<PathBuf> {
    let directory = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker")))?;
    Some(directory.join("config.json"))
}

/// The login for `[swarm] registry`, read once per command; a helper-kept login or none means
/// anonymous access (the first with a warning through `warn`).
pub fn login_for(
    registry: &str,
    warn: impl FnOnce(String),
) -> anyhow::Result<Option<RegistryLogin>> {
    let host = registry_host(registry);
    let Some(path) = client_config_path() else {
        return Ok(None);
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    match credentials_for(&text, host).map_err(|e| e.context(path.display().to_string()))? {
        Login::Found(login) => Ok(Some(login)),
        Login::None => Ok(None),
        Login::InHelper(helper) => {
            warn(format!(
                "{}: the login for {host} is kept by the credential helper `{helper}`, which erlmcp-gen does not run; \
                 pushing to {host} without credentials (`docker login` with no helper stores it in `auths`)",
                path.display()
            ));
            Ok(None)
        }
    }
}

impl SwarmEngine {
    /// Tags each image into the registry and pushes it: the digest reference of each, by its
    /// pushed `repo:tag`. Pushing what the registry already has sends no layer, so every
    /// `apply` that starts a service pushes again rather than trust a registry it cannot see.
    pub(super) async fn push_images(
        &self,
        pushes: &[Push],
        login: Option<&RegistryLogin>,
        task: &Task,
    ) -> anyhow::Result<BTreeMap<String, String>> {
        let mut references = BTreeMap::new();
        for push in pushes {
            let (repo, tag) = split_tag(&push.pushed);
            task.step(format!("pushing {}", push.pushed));
            let options = TagImageOptionsBuilder::default()
                .repo(repo)
                .tag(tag)
                .build();
            self.docker
                .tag_image(&push.local, Some(options))
                .await
                .map_err(|e| {
                    engine_error(&format!("tagging {} as {}", push.local, push.pushed), e)
                })?;
            let options = PushImageOptionsBuilder::default().tag(tag).build();
            let mut stream =
                self.docker
                    .push_image(repo, Some(options), login.map(RegistryLogin::credentials));
            let mut digest = None;
            while let Some(item) = stream.next().await {
                let info = item.map_err(|e| {
                    engine_error(
                        &format!(
                            "pushing {} (is the registry running, reachable from the engine, and does the engine \
                             trust it? a registry on plain HTTP must be in the engine's `insecure-registries`, \
                             except on 127.0.0.0/8)",
                            push.pushed
                        ),
                        e,
                    )
                })?;
                if let Some(found) = info.status.as_deref().and_then(digest_in_push_status) {
                    digest = Some(found.to_string());
                }
            }
            let digest = match digest {
                Some(digest) => digest,
                None => self.repo_digest(&push.pushed, repo).await?,
            };
            references.insert(push.pushed.clone(), digest_reference(&push.pushed, &digest));
        }
        Ok(references)
    }

    /// The digest the engine recorded for `repo` after a push (older engines may not say it in
    /// the push's messages).
    async fn repo_digest(&self, pushed: &str, repo: &str) -> anyhow::Result<String> {
        let image = self
            .docker
            .inspect_image(pushed)
            .await
            .map_err(|e| engine_error(&format!("inspecting {pushed}"), e))?;
        image
            .repo_digests
            .unwrap_or_default()
            .iter()
            .find_map(|d| d.strip_prefix(&format!("{repo}@")).map(str::to_string))
            .ok_or_else(|| anyhow!("the engine pushed {pushed} but recorded no digest for it"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_is_after_the_last_colon_past_the_port() {
        assert_eq!(
            split_tag("127.0.0.1:5000/team/erlmcp-node:0.1.0-ab"),
            ("127.0.0.1:5000/team/erlmcp-node", "0.1.0-ab")
        );
        assert_eq!(
            split_tag("127.0.0.1:5000/x"),
            ("127.0.0.1:5000/x", "latest")
        );
        assert_eq!(registry_host("127.0.0.1:5000/team"), "127.0.0.1:5000");
        assert_eq!(registry_host("r.io"), "r.io");
    }

    #[test]
    fn the_digest_comes_from_the_push_status_line() {
        let hex = "a".repeat(64);
        let status = format!("0.1.0-ab: digest: sha256:{hex} size: 528");
        assert_eq!(
            digest_in_push_status(&status),
            Some(format!("sha256:{hex}").as_str())
        );
        assert_eq!(digest_in_push_status("Pushed"), None);
        assert_eq!(digest_in_push_status("x: digest: sha256:abc size: 1"), None);
        assert_eq!(
            digest_reference("r.io/x:1", &format!("sha256:{hex}")),
            format!("r.io/x:1@sha256:{hex}")
        );
    }

    fn auth(user_pass: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    }

    #[test]
    fn a_login_is_found_by_host_whatever_the_key_spelling() {
        let config = format!(
            r#"{{"auths": {{"https://r.io/v1/": {{"auth": "{}"}}, "other.io": {{"auth": "{}"}}}}}}"#,
            auth("ann:s3cr:et"),
            auth("bob:x")
        );
        let Login::Found(login) = credentials_for(&config, "r.io").unwrap() else {
            panic!("no login for r.io");
        };
        let credentials = login.credentials();
        assert_eq!(credentials.username.as_deref(), Some("ann"));
        assert_eq!(credentials.password.as_deref(), Some("s3cr:et"));
        assert_eq!(
            credentials.serveraddress.as_deref(),
            Some("https://r.io/v1/")
        );
        let shown = format!("{login:?}");
        assert!(!shown.contains("s3cr") && !shown.contains("ann"), "{shown}");
        assert_eq!(credentials_for(&config, "r.io:5000").unwrap(), Login::None);
        let hub = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
            auth("c:d")
        );
        assert!(matches!(
            credentials_for(&hub, "docker.io").unwrap(),
            Login::Found(_)
        ));
    }

    #[test]
    fn a_helper_kept_login_is_named_and_a_bad_auth_is_refused_without_its_value() {
        let helper = r#"{"auths": {"r.io": {}}, "credsStore": "desktop"}"#;
        assert_eq!(
            credentials_for(helper, "r.io").unwrap(),
            Login::InHelper("desktop".into())
        );
        let per_host = r#"{"credHelpers": {"r.io": "ecr-login"}}"#;
        assert_eq!(
            credentials_for(per_host, "r.io").unwrap(),
            Login::InHelper("ecr-login".into())
        );
        assert_eq!(credentials_for("{}", "r.io").unwrap(), Login::None);
        let bad = r#"{"auths": {"r.io": {"auth": "bm8tY29sb24="}}}"#;
        let error = credentials_for(bad, "r.io").unwrap_err().to_string();
        assert!(
            error.contains("r.io") && !error.contains("bm8tY29sb24"),
            "{error}"
        );
        let token = r#"{"auths": {"r.io": {"identitytoken": "tok"}}}"#;
        let Login::Found(login) = credentials_for(token, "r.io").unwrap() else {
            panic!("an identity token is a login");
        };
        assert_eq!(login.credentials().identitytoken.as_deref(), Some("tok"));
    }
}
