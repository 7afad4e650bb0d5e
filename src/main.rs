//! The `erlmcp-gen` binary: a thin shell over the library.

mod cli;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;

use cli::{Cli, Command, Format, RuntimeArgs, RuntimeChoice};
use erlmcp_gen::config::model::RuntimeKind;
use erlmcp_gen::config::{self, Cluster};
use erlmcp_gen::diagnostic;
use erlmcp_gen::engine::Runtime;
use erlmcp_gen::progress::Progress;
use erlmcp_gen::stress_command::{self, StressRequest};
use erlmcp_gen::{host, render, terminal, validate};

fn main() -> ExitCode {
    let cli = Cli::parse();
    erlmcp_gen::terminal::init(cli.color.into());
    let result = match cli.command {
        Command::Validate {
            cluster,
            host,
            format,
        } => cmd_validate(&cluster, host, format),
        Command::Render {
            cluster,
            out,
            check,
        } => cmd_render(&cluster, &out, check),
        Command::Plan { runtime, json } => block_on(cmd_plan(runtime, json)),
        Command::Apply {
            runtime,
            health_timeout,
            no_wait,
        } => block_on(cmd_apply(runtime, (!no_wait).then_some(health_timeout.0))),
        Command::Status {
            runtime,
            json,
            watch,
            watch_for,
        } => block_on(cmd_status(runtime, json, watch.then_some(watch_for.0))),
        Command::Down { runtime, volumes } => block_on(cmd_down(runtime, volumes)),
        Command::StressWorker => erlmcp_gen::stress::worker_main().map(|()| ExitCode::SUCCESS),
        Command::Stress {
            runtime,
            connections,
            duration,
            ramp,
            rate,
            transport,
            out,
            no_baseline,
            sessions_per_worker,
            workers,
            compare,
        } => block_on(async move {
            let cluster = load_valid(&runtime.cluster)?;
            let request = StressRequest {
                connections: connections.unwrap_or(cluster.stress.connections),
                duration: duration.map_or(cluster.stress.duration.0, |d| d.0),
                ramp: ramp.map_or(cluster.stress.ramp.0, |d| d.0),
                rate: rate.unwrap_or(cluster.stress.rate),
                transport: transport.unwrap_or(cluster.stress.transport),
                baseline: !no_baseline,
                sessions_per_worker,
                out,
                command_line: std::env::args().collect::<Vec<_>>().join(" "),
                progress: !runtime.quiet,
                workers_on: workers,
            };
            cmd_stress(cluster, runtime, request, compare).await
        }),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads a cluster for a command that acts on it: prints warnings, stops on errors.
fn load_valid(path: &Path) -> anyhow::Result<Cluster> {
    let loaded = config::load(path)?;
    let validated = validate::file(&loaded.path, &loaded.text);
    if !validated.findings.is_empty() {
        let text = diagnostic::render_all(&validated.findings, &loaded.path, &loaded.text, true);
        let _ = write!(terminal::stderr(), "{text}");
    }
    match validated.valid_cluster() {
        Some(cluster) => Ok(cluster.clone()),
        None => anyhow::bail!(
            "{} is invalid; `erlmcp-gen validate {}` lists why",
            loaded.path,
            loaded.path
        ),
    }
}

fn cmd_validate(path: &Path, with_host: bool, format: Format) -> anyhow::Result<ExitCode> {
    let loaded = config::load(path)?;
    let validated = validate::file(&loaded.path, &loaded.text);
    let found = &validated.findings;
    let cluster = validated.valid_cluster();
    let host_checks = match (with_host, cluster) {
        (true, Some(cluster)) => {
            let facts = host::read_facts(cluster);
            Some((host::judge(cluster, &facts), facts))
        }
        _ => None,
    };
    let host_fails = host_checks
        .as_ref()
        .is_some_and(|(checks, _)| checks.iter().any(|c| c.verdict == host::Verdict::Fail));
    let valid = cluster.is_some();
    match format {
        Format::Json => {
            let located: Vec<_> = found
                .iter()
                .map(|d| d.locate(&loaded.path, &loaded.text))
                .collect();
            let report = serde_json::json!({
                "file": loaded.path,
                "valid": valid,
                "diagnostics": located,
                "host": host_checks.as_ref().map(|(checks, facts)| serde_json::json!({
                    "facts": facts,
                    "checks": checks,
                    "fits": !host_fails,
                })),
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Format::Text => {
            let mut out = terminal::stdout();
            let text = diagnostic::render_all(found, &loaded.path, &loaded.text, true);
            let _ = write!(out, "{text}");
            if let Some(cluster) = cluster {
                println!(
                    "{}: valid — {} nodes, {} connections in all, runtime {:?}",
                    loaded.path,
                    cluster.nodes.len(),
                    cluster.capacity(),
                    cluster.runtime.kind
                );
            }
            if let Some((checks, _)) = &host_checks {
                println!("\nThis machine against {}:", loaded.path);
                for check in checks {
                    let verdict = match check.verdict {
                        host::Verdict::Ok => "ok  ",
                        host::Verdict::Warn => "warn",
                        host::Verdict::Fail => "FAIL",
                    };
                    println!(
                        "  [{verdict}] {}: have {}; need {}",
                        check.name, check.have, check.need
                    );
                    if !check.fix.is_empty() {
                        println!("         fix: {}", check.fix);
                    }
                }
                if host_fails {
                    println!("\nThis machine cannot run {} as written.", loaded.path);
                }
            }
            if !valid {
                let errors = found
                    .iter()
                    .filter(|d| d.severity == erlmcp_gen::diagnostic::Severity::Error)
                    .count();
                println!(
                    "{}: invalid ({errors} error{})",
                    loaded.path,
                    if errors == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(if valid && !host_fails {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cmd_render(path: &Path, out: &Path, check: bool) -> anyhow::Result<ExitCode> {
    let cluster = load_valid(path)?;
    let files = render::render(&cluster)?;
    if check {
        let stale = render::stale_files(&files, out);
        if stale.is_empty() {
            println!("{} is up to date with {}", out.display(), cluster.source);
            return Ok(ExitCode::SUCCESS);
        }
        for file in &stale {
            print!("{}", file.diff);
        }
        eprintln!(
            "error: {} file(s) in {} are stale; run `erlmcp-gen render {} -o {}` and commit the result",
            stale.len(),
            out.display(),
            cluster.source,
            out.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let written =
        render::write(&files, out).with_context(|| format!("writing {}", out.display()))?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn block_on(
    future: impl std::future::Future<Output = anyhow::Result<ExitCode>>,
) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(future)
}

/// Loads the cluster and picks its runtime.
async fn runtime_for(args: &RuntimeArgs) -> anyhow::Result<(Cluster, Runtime, Progress)> {
    let cluster = load_valid(&args.cluster)?;
    let progress = Progress::new(args.quiet);
    let choice = args.runtime.map(|r| match r {
        RuntimeChoice::Docker => RuntimeKind::Docker,
        RuntimeChoice::Native => RuntimeKind::Native,
    });
    let runtime = Runtime::select(&cluster, choice, &progress).await?;
    Ok((cluster, runtime, progress))
}

async fn cmd_plan(args: RuntimeArgs, json: bool) -> anyhow::Result<ExitCode> {
    let (cluster, runtime, progress) = runtime_for(&args).await?;
    let prepared = runtime.prepare(&cluster, &progress).await?;
    let plan = prepared.plan(&cluster).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print!("{}", plan.to_text());
    }
    Ok(if plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

async fn cmd_apply(
    args: RuntimeArgs,
    health_timeout: Option<std::time::Duration>,
) -> anyhow::Result<ExitCode> {
    let (cluster, runtime, progress) = runtime_for(&args).await?;
    let prepared = runtime.prepare(&cluster, &progress).await?;
    let plan = prepared.plan(&cluster).await?;
    if !args.quiet {
        print!("{}", plan.to_text());
    }
    if !plan.has_changes() {
        if !args.quiet {
            println!("nothing to do: no resource was touched");
        }
        return Ok(ExitCode::SUCCESS);
    }
    prepared
        .apply(&cluster, &plan, &progress, health_timeout)
        .await?;
    if !args.quiet {
        println!("applied: {}", cluster.source);
    }
    Ok(ExitCode::SUCCESS)
}

async fn cmd_status(
    args: RuntimeArgs,
    json: bool,
    watch: Option<std::time::Duration>,
) -> anyhow::Result<ExitCode> {
    let (cluster, runtime, _) = runtime_for(&args).await?;
    let deadline = watch.map(|d| std::time::Instant::now() + d);
    loop {
        let status = runtime.status(&cluster).await?;
        if json {
            println!("{}", serde_json::to_string_pretty(&status)?);
        } else {
            if watch.is_some() {
                print!("\x1b[2J\x1b[H");
            }
            print!("{}", status.to_text());
        }
        match deadline {
            Some(deadline) if std::time::Instant::now() < deadline => {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                }
            }
            _ => return Ok(ExitCode::SUCCESS),
        }
    }
}

fn runtime_kind(choice: RuntimeChoice) -> RuntimeKind {
    match choice {
        RuntimeChoice::Docker => RuntimeKind::Docker,
        RuntimeChoice::Native => RuntimeKind::Native,
    }
}

async fn cmd_stress(
    cluster: Cluster,
    args: RuntimeArgs,
    request: StressRequest,
    compare: Vec<RuntimeChoice>,
) -> anyhow::Result<ExitCode> {
    let progress = Progress::new(args.quiet);
    let out = request
        .out
        .clone()
        .unwrap_or_else(|| stress_command::default_out_dir(&cluster.name));
    if compare.is_empty() {
        let runtime = Runtime::select(&cluster, args.runtime.map(runtime_kind), &progress).await?;
        let summary = stress_command::run_on(&cluster, &runtime, &request, &out, &progress).await?;
        print!("{}", summary.to_text());
        println!("report: {}", out.join("report.html").display());
        return Ok(if summary.verdict.passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    // --compare: the same profile on each runtime, the cluster brought up on each first.
    let kinds: Vec<RuntimeKind> = compare.into_iter().map(runtime_kind).collect();
    let (first, second) = stress_command::compare_runtimes(&kinds)?;
    let mut summaries = Vec::new();
    for (kind, other) in [(first, second), (second, first)] {
        // Both runtimes publish the same ports: the other one's cluster must be down first.
        Runtime::select(&cluster, Some(other), &progress)
            .await?
            .down(&cluster, false, &progress)
            .await?;
        let runtime = Runtime::select(&cluster, Some(kind), &progress).await?;
        let name = runtime.name();
        let prepared = runtime.prepare(&cluster, &progress).await?;
        let plan = prepared.plan(&cluster).await?;
        if plan.has_changes() {
            prepared
                .apply(
                    &cluster,
                    &plan,
                    &progress,
                    Some(std::time::Duration::from_secs(120)),
                )
                .await?;
        }
        let runtime = Runtime::select(&cluster, Some(kind), &progress).await?;
        let summary =
            stress_command::run_on(&cluster, &runtime, &request, &out.join(name), &progress)
                .await?;
        summaries.push((name, summary));
    }
    let rows = erlmcp_gen::report::compare::compare_runs(&summaries[0].1, &summaries[1].1);
    let text = erlmcp_gen::report::compare::comparison_text(summaries[0].0, summaries[1].0, &rows);
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("compare.txt"), &text)?;
    std::fs::write(
        out.join("compare.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    println!(
        "overhead of {} against {} (same profile, this machine, this run):",
        summaries[1].0, summaries[0].0
    );
    print!("{text}");
    println!(
        "reports: {}/{{{},{}}}/report.html",
        out.display(),
        summaries[0].0,
        summaries[1].0
    );
    let passed = summaries.iter().all(|(_, s)| s.verdict.passed);
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn cmd_down(args: RuntimeArgs, volumes: bool) -> anyhow::Result<ExitCode> {
    let (cluster, runtime, progress) = runtime_for(&args).await?;
    runtime.down(&cluster, volumes, &progress).await?;
    if !args.quiet {
        println!("down: {} on {}", cluster.name, runtime.name());
    }
    Ok(ExitCode::SUCCESS)
}
