//! The images a Docker cluster needs: the node image (built from source or from a host-built
//! static binary), Prometheus's (present, built from the host's install, or pulled), and how
//! each is made present.

use anyhow::{Context as _, anyhow, bail};
use bollard::body_full;
use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use futures_util::StreamExt as _;

use super::{DockerEngine, engine_error};
use crate::config::model::{Cluster, ImageBuild};
use crate::engine::arch;
use crate::engine::image::{self, BuildContext};
use crate::progress::Progress;

/// How the node image comes about.
#[derive(Debug, Clone)]
pub enum ImageSource {
    /// Already in the engine.
    Present,
    /// Built from this context.
    Build(BuildContext),
    /// Pulled from a registry.
    Pull,
}

/// An image the cluster needs.
#[derive(Debug, Clone)]
pub struct ImageNeed {
    /// Reference.
    pub tag: String,
    /// How to get it.
    pub source: ImageSource,
}

impl DockerEngine {
    pub(super) async fn node_image(
        &self,
        cluster: &Cluster,
        progress: &Progress,
        source_dockerfile: &str,
        prebuilt_dockerfile: &str,
    ) -> anyhow::Result<ImageNeed> {
        let builder_present = self.image_present(&cluster.image.builder).await;
        // The engine's CPU decides (src/engine/arch.rs): never an image the engine cannot start.
        let engine_arch = arch::engine_arch(&self.docker).await;
        let decision = arch::decide(
            cluster.image.build,
            &engine_arch,
            builder_present,
            &arch::HostCapabilities::detect(),
        )
        .map_err(|why| anyhow!(why))?;
        let context = match decision {
            arch::NodeImagePlan::Source { because } => {
                if let Some(because) = because {
                    progress.warn(format!("image: {because}"));
                }
                let root = image::workspace_root()
                    .ok_or_else(|| anyhow!("the `source` build needs the erlmcp-gen workspace"))?;
                image::source_node_context(
                    &cluster.image.repository,
                    &cluster.version,
                    source_dockerfile,
                    &root,
                )?
            }
            arch::NodeImagePlan::Prebuilt(build) => {
                if cluster.image.build == ImageBuild::Auto {
                    progress.info(format!(
                        "image: the builder image {} is not in the engine; building the registry-free `prebuilt` image \
                         (a host-built static erlmcp-node for {} FROM scratch)",
                        cluster.image.builder,
                        engine_arch.name()
                    ));
                }
                let binary = image::static_node_binary_for(progress, &build)?;
                image::prebuilt_node_context(
                    &cluster.image.repository,
                    &cluster.version,
                    prebuilt_dockerfile,
                    &binary,
                )?
            }
        };
        let source = if self.image_present(&context.tag).await {
            ImageSource::Present
        } else {
            ImageSource::Build(context.clone())
        };
        Ok(ImageNeed {
            tag: context.tag,
            source,
        })
    }

    /// The file's Prometheus image when the engine has it; else one built from the host's
    /// Prometheus install; else the file's image, pulled during `apply`.
    pub(super) async fn prometheus_image(
        &self,
        cluster: &Cluster,
        progress: &Progress,
    ) -> anyhow::Result<ImageNeed> {
        let wanted = &cluster.prometheus.image;
        if self.image_present(wanted).await {
            return Ok(ImageNeed {
                tag: wanted.clone(),
                source: ImageSource::Present,
            });
        }
        // The host's install serves only an engine of this machine's CPU.
        let same_cpu = arch::engine_arch(&self.docker).await == arch::Arch::host();
        if let Some(binary) = image::host_prometheus()
            .filter(|binary| same_cpu && image::runs_in_linux_container(binary))
        {
            let static_node = image::static_node_binary(progress)?;
            let context = image::local_prometheus_context(&binary, &static_node)?;
            progress.info(format!(
                "prometheus: {wanted} is not in the engine; using {} built from {} (pull {wanted} to use it instead)",
                context.tag,
                binary.display()
            ));
            let source = if self.image_present(&context.tag).await {
                ImageSource::Present
            } else {
                ImageSource::Build(context.clone())
            };
            return Ok(ImageNeed {
                tag: context.tag,
                source,
            });
        }
        Ok(ImageNeed {
            tag: wanted.clone(),
            source: ImageSource::Pull,
        })
    }

    /// Builds `context` unless the engine already has its tag; returns the tag.
    pub(crate) async fn ensure_image(
        &self,
        context: BuildContext,
        progress: &Progress,
    ) -> anyhow::Result<String> {
        let need = ImageNeed {
            tag: context.tag.clone(),
            source: if self.image_present(&context.tag).await {
                ImageSource::Present
            } else {
                ImageSource::Build(context)
            },
        };
        self.provide_image(&need, progress).await?;
        Ok(need.tag)
    }

    /// Makes `need` present in the engine: nothing, a build, or a pull.
    pub(super) async fn provide_image(
        &self,
        need: &ImageNeed,
        progress: &Progress,
    ) -> anyhow::Result<()> {
        match &need.source {
            ImageSource::Present => Ok(()),
            ImageSource::Build(context) => {
                let task = progress.task(format!("image {}", need.tag));
                let options = BuildImageOptionsBuilder::default()
                    .dockerfile("Dockerfile")
                    .t(&need.tag)
                    .rm(true)
                    .forcerm(true)
                    .build();
                let mut stream = self.docker.build_image(
                    options,
                    None,
                    Some(body_full(context.tar.clone().into())),
                );
                while let Some(item) = stream.next().await {
                    let info = item.map_err(|e| {
                        task.step("failed");
                        engine_error(&format!("building image {}", need.tag), e)
                    })?;
                    if let Some(detail) = info.error_detail {
                        bail!(
                            "building image {}: {}",
                            need.tag,
                            detail.message.unwrap_or_default()
                        );
                    }
                    if let Some(line) = info
                        .stream
                        .as_deref()
                        .map(str::trim)
                        .filter(|l| l.starts_with("Step"))
                    {
                        task.step(line);
                    }
                }
                task.done("built");
                Ok(())
            }
            ImageSource::Pull => {
                let task = progress.task(format!("image {}", need.tag));
                let options = CreateImageOptionsBuilder::default()
                    .from_image(&need.tag)
                    .build();
                let mut stream = self.docker.create_image(Some(options), None, None);
                while let Some(item) = stream.next().await {
                    if let Err(e) = item {
                        task.failed("pull failed");
                        return Err(engine_error(&format!("pulling {}", need.tag), e)).context(
                            "no registry answered and the host has no Prometheus to build a local image from: \
                             install Debian's `prometheus` package or load the image into the engine",
                        );
                    }
                }
                task.done("pulled");
                Ok(())
            }
        }
    }
}
