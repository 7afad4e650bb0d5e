//! The CPU the node image is built for: the engine's architecture (its info API), what this
//! machine can build a static Linux `erlmcp-node` for, and the pure decision between the
//! `prebuilt` image (a host-built binary `FROM scratch`) and the `source` build (compiled inside
//! the engine, so for its CPU). An image whose binary the engine's CPU cannot run is never built.

use std::path::Path;

use crate::config::model::ImageBuild;

/// A CPU architecture in the kernel's spelling (`uname -m`), as Docker's info API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit x86 (`x86_64`; Go and Docker Desktop may say `amd64`).
    X86_64,
    /// 64-bit Arm (`aarch64`; Apple Silicon's Colima VM; `arm64` elsewhere).
    Aarch64,
    /// Any other architecture the engine named.
    Other(String),
    /// The engine did not say.
    Unknown,
}

impl Arch {
    /// Reads an architecture as an engine or `std::env::consts::ARCH` names it.
    pub fn parse(name: &str) -> Arch {
        match name.trim() {
            "" => Arch::Unknown,
            "x86_64" | "amd64" => Arch::X86_64,
            "aarch64" | "arm64" => Arch::Aarch64,
            other => Arch::Other(other.to_string()),
        }
    }

    /// This machine's own architecture.
    pub fn host() -> Arch {
        Arch::parse(std::env::consts::ARCH)
    }

    /// The kernel's name for it.
    pub fn name(&self) -> &str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Other(name) => name,
            Arch::Unknown => "unknown",
        }
    }

    /// The Rust target of a static glibc Linux binary for it (`None` when unknown).
    pub fn linux_target(&self) -> Option<String> {
        (*self != Arch::Unknown).then(|| format!("{}-unknown-linux-gnu", self.name()))
    }
}

/// What this machine can build a static Linux `erlmcp-node` for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCapabilities {
    /// This machine's architecture.
    pub arch: Arch,
    /// Whether it runs Linux (a static glibc build needs Linux's own toolchain).
    pub linux: bool,
    /// Rust targets installed (`rustup target list --installed`; empty without rustup).
    pub installed_targets: Vec<String>,
    /// Cross linkers on PATH, by target (`aarch64-linux-gnu-gcc` for `aarch64-unknown-linux-gnu`).
    pub cross_linkers: Vec<String>,
}

impl HostCapabilities {
    /// Reads this machine's capabilities (runs `rustup`, looks on PATH).
    pub fn detect() -> HostCapabilities {
        let installed_targets = std::process::Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let cross_linkers = [Arch::X86_64, Arch::Aarch64]
            .iter()
            .filter(|arch| on_path(&cross_linker(arch)))
            .filter_map(Arch::linux_target)
            .collect();
        HostCapabilities {
            arch: Arch::host(),
            linux: cfg!(target_os = "linux"),
            installed_targets,
            cross_linkers,
        }
    }

    /// How this machine builds a static Linux binary for `arch`, or why it cannot.
    pub fn static_build_for(&self, arch: &Arch) -> Result<StaticBuild, String> {
        let Some(target) = arch.linux_target() else {
            return Err("the engine did not say its CPU architecture".into());
        };
        if !self.linux {
            return Err(format!(
                "this machine is not Linux, so it cannot link a static Linux erlmcp-node for {}",
                arch.name()
            ));
        }
        if *arch == self.arch {
            return Ok(StaticBuild {
                target,
                linker: None,
            });
        }
        if !self.installed_targets.contains(&target) {
            return Err(format!(
                "this machine is {} and has no Rust target {target} (`rustup target add {target}`)",
                self.arch.name()
            ));
        }
        if !self.cross_linkers.contains(&target) {
            return Err(format!(
                "this machine is {} and has no linker {} for {target}",
                self.arch.name(),
                cross_linker(arch)
            ));
        }
        Ok(StaticBuild {
            linker: Some(cross_linker(arch)),
            target,
        })
    }
}

/// A static build this machine can run: `cargo build --target TARGET`, with a cross linker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticBuild {
    /// The Rust target.
    pub target: String,
    /// The linker (`CARGO_TARGET_<TARGET>_LINKER`) when it is not this machine's own.
    pub linker: Option<String>,
}

/// How the node image is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeImagePlan {
    /// The host-built static binary `FROM scratch`.
    Prebuilt(StaticBuild),
    /// The multi-stage Dockerfile, compiled inside the engine (so for its CPU); `because` says
    /// why, when it was not what the cluster file asked for or the obvious choice.
    Source {
        /// Why the `source` build, for the message.
        because: Option<String>,
    },
}

/// Decides how to build the node image for an engine of `engine_arch`, given what the file asks
/// (`build`), whether the engine has the Rust builder image, and what this machine can build.
/// An explicit `prebuilt` that this machine cannot build for the engine is an error: the image
/// would not start.
pub fn decide(
    build: ImageBuild,
    engine_arch: &Arch,
    builder_present: bool,
    host: &HostCapabilities,
) -> Result<NodeImagePlan, String> {
    let prebuilt = host.static_build_for(engine_arch);
    match build {
        ImageBuild::Source => Ok(NodeImagePlan::Source { because: None }),
        ImageBuild::Prebuilt => prebuilt.map(NodeImagePlan::Prebuilt).map_err(|why| {
            format!(
                "`build = \"prebuilt\"` needs an erlmcp-node for the engine's CPU ({}), but {why}; \
                 use `build = \"source\"` (compiled inside the engine) or `auto`",
                engine_arch.name()
            )
        }),
        ImageBuild::Auto if builder_present => Ok(NodeImagePlan::Source { because: None }),
        ImageBuild::Auto => Ok(match prebuilt {
            Ok(static_build) => NodeImagePlan::Prebuilt(static_build),
            Err(why) => NodeImagePlan::Source {
                because: Some(format!(
                    "the engine runs {} and {why}: building the `source` image inside the engine \
                     instead (it needs the Rust builder image)",
                    engine_arch.name()
                )),
            },
        }),
    }
}

/// The cross linker Debian's `gcc-<arch>-linux-gnu` package installs.
fn cross_linker(arch: &Arch) -> String {
    format!("{}-linux-gnu-gcc", arch.name())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| Path::new(&dir).join(program).is_file())
    })
}

/// The engine's architecture, from its info API (`Unknown` when it does not answer).
pub async fn engine_arch(docker: &bollard::Docker) -> Arch {
    docker
        .info()
        .await
        .ok()
        .and_then(|info| info.architecture)
        .map_or(Arch::Unknown, |name| Arch::parse(&name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x86_host(targets: &[&str], linkers: &[&str]) -> HostCapabilities {
        HostCapabilities {
            arch: Arch::X86_64,
            linux: true,
            installed_targets: targets.iter().map(|t| t.to_string()).collect(),
            cross_linkers: linkers.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn mac_host() -> HostCapabilities {
        HostCapabilities {
            arch: Arch::Aarch64,
            linux: false,
            installed_targets: vec!["aarch64-apple-darwin".into()],
            cross_linkers: vec![],
        }
    }

    const ARM: &str = "aarch64-unknown-linux-gnu";

    fn prebuilt(target: &str, linker: Option<&str>) -> NodeImagePlan {
        NodeImagePlan::Prebuilt(StaticBuild {
            target: target.into(),
            linker: linker.map(str::to_string),
        })
    }

    fn source_because(plan: &NodeImagePlan) -> String {
        match plan {
            NodeImagePlan::Source { because } => because.clone().unwrap_or_default(),
            other => panic!("expected the source build, got {other:?}"),
        }
    }

    #[test]
    fn engine_architecture_names_are_read_in_every_spelling() {
        assert_eq!(Arch::parse("x86_64"), Arch::X86_64);
        assert_eq!(Arch::parse("amd64"), Arch::X86_64);
        assert_eq!(Arch::parse("aarch64"), Arch::Aarch64);
        assert_eq!(Arch::parse("arm64"), Arch::Aarch64);
        assert_eq!(Arch::parse(""), Arch::Unknown);
        assert_eq!(Arch::parse("riscv64"), Arch::Other("riscv64".into()));
        assert_eq!(Arch::Unknown.linux_target(), None);
    }

    #[test]
    fn an_engine_of_this_machines_cpu_gets_the_prebuilt_image() {
        let host = x86_host(&["x86_64-unknown-linux-gnu"], &[]);
        let plan = decide(ImageBuild::Auto, &Arch::X86_64, false, &host).unwrap();
        assert_eq!(plan, prebuilt("x86_64-unknown-linux-gnu", None));
        let plan = decide(ImageBuild::Prebuilt, &Arch::parse("amd64"), true, &host).unwrap();
        assert_eq!(plan, prebuilt("x86_64-unknown-linux-gnu", None));
    }

    #[test]
    fn an_arm_engine_from_an_x86_machine_without_cross_tools_falls_back_to_source() {
        let host = x86_host(&["x86_64-unknown-linux-gnu"], &[]);
        let plan = decide(ImageBuild::Auto, &Arch::Aarch64, false, &host).unwrap();
        let why = source_because(&plan);
        assert!(why.contains("engine runs aarch64"), "{why}");
        assert!(
            why.contains("rustup target add aarch64-unknown-linux-gnu"),
            "{why}"
        );
        assert!(why.contains("`source` image"), "{why}");
        // The target alone is not enough: the linker is missing.
        let host = x86_host(&[ARM], &[]);
        let why = source_because(&decide(ImageBuild::Auto, &Arch::Aarch64, false, &host).unwrap());
        assert!(why.contains("no linker aarch64-linux-gnu-gcc"), "{why}");
    }

    #[test]
    fn an_arm_engine_from_an_x86_machine_with_target_and_linker_is_cross_built() {
        let host = x86_host(&[ARM], &[ARM]);
        let plan = decide(ImageBuild::Auto, &Arch::Aarch64, false, &host).unwrap();
        assert_eq!(plan, prebuilt(ARM, Some("aarch64-linux-gnu-gcc")));
    }

    #[test]
    fn an_explicit_prebuilt_that_could_not_start_is_refused() {
        let host = x86_host(&[], &[]);
        let error = decide(ImageBuild::Prebuilt, &Arch::Aarch64, false, &host).unwrap_err();
        assert!(error.contains("engine's CPU (aarch64)"), "{error}");
        assert!(error.contains("build = \"source\""), "{error}");
        let error = decide(ImageBuild::Prebuilt, &Arch::Unknown, false, &host).unwrap_err();
        assert!(
            error.contains("did not say its CPU architecture"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_engine_architecture_never_gets_a_prebuilt_image() {
        let host = x86_host(&["x86_64-unknown-linux-gnu"], &[]);
        let why = source_because(&decide(ImageBuild::Auto, &Arch::Unknown, false, &host).unwrap());
        assert!(why.contains("did not say its CPU architecture"), "{why}");
        let other = Arch::parse("riscv64");
        let why = source_because(&decide(ImageBuild::Auto, &other, false, &host).unwrap());
        assert!(why.contains("engine runs riscv64"), "{why}");
    }

    #[test]
    fn a_mac_builds_the_source_image_for_its_colima_vm() {
        let why =
            source_because(&decide(ImageBuild::Auto, &Arch::Aarch64, false, &mac_host()).unwrap());
        assert!(why.contains("not Linux"), "{why}");
    }

    #[test]
    fn source_and_a_present_builder_keep_the_source_build() {
        let host = x86_host(&[], &[]);
        for (build, builder) in [(ImageBuild::Source, false), (ImageBuild::Auto, true)] {
            assert_eq!(
                decide(build, &Arch::X86_64, builder, &host).unwrap(),
                NodeImagePlan::Source { because: None }
            );
        }
    }
}
