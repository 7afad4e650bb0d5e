//! The `erlmcp-gen` binary: a thin shell over the library.

mod cli;

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{CommandFactory as _, Parser as _};
use serde::Serialize;

use cli::{Cli, Command, RuntimeArgs, RuntimeChoice, ShellArg};
use erlmcp_gen::config::model::RuntimeKind;
use erlmcp_gen::config::{self, Cluster};
use erlmcp_gen::diagnostic::{self, Severity};
use erlmcp_gen::engine::Runtime;
use erlmcp_gen::output::{self, Format, InvalidFile, Outcome};
use erlmcp_gen::progress::Progress;
use erlmcp_gen::stress::find_max::FindMaxPlan;
use erlmcp_gen::stress_command::{self, StressRequest};
use erlmcp_gen::{host, init, logs, metrics_collection, render, terminal, validate};

fn main() -> ExitCode {
    // Before any thread or child exists: nothing inherited may outlive this command in a node.
    erlmcp_gen::inherited_descriptors::keep_from_children();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // --help and --version end here too, successfully.
            return if error.use_stderr() {
                ExitCode::from(Outcome::Usage.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    erlmcp_gen::terminal::init(cli.color.into());
    let result = match cli.command {
        Command::Validate {
            cluster,
            host,
            probe,
            format,
        } => cmd_validate(&cluster, host, probe, format.get()),
        Command::Render {
            cluster,
            out,
            check,
            format,
        } => cmd_render(&cluster, &out, check, format.get()),
        Command::Plan {
            runtime,
            detailed_exitcode,
        } => block_on(cmd_plan(runtime, detailed_exitcode)),
        Command::Apply {
            runtime,
            health_timeout,
            no_wait,
        } => block_on(cmd_apply(runtime, (!no_wait).then_some(health_timeout.0))),
        Command::Status {
            runtime,
            watch,
            watch_for,
        } => block_on(cmd_status(runtime, watch.then_some(watch_for.0))),
        Command::Down { runtime, volumes } => block_on(cmd_down(runtime, volumes)),
        Command::StressWorker {
            shard_from_env: false,
        } => erlmcp_gen::stress::worker_main().map(|()| Outcome::Success),
        Command::StressWorker {
            shard_from_env: true,
        } => {
            erlmcp_gen::stress::job_worker::job_main();
            Ok(Outcome::Success)
        }
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
            find_max,
            start,
            step,
            max,
            until_baseline_behind,
        } => block_on(async move {
            let cluster = load_valid(&runtime.cluster)?;
            // A find-max step is a short hold unless --duration names one; the file's
            // duration is for a single run.
            let default_duration = if find_max {
                erlmcp_gen::stress::find_max::DEFAULT_STEP_HOLD
            } else {
                cluster.stress.duration.0
            };
            let request = StressRequest {
                connections: connections.unwrap_or(cluster.stress.connections),
                duration: duration.map_or(default_duration, |d| d.0),
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
            if find_max {
                let mut plan = FindMaxPlan::new(start.unwrap_or(request.rate), step, max)?;
                plan.until_baseline_behind = until_baseline_behind;
                return cmd_find_max(cluster, runtime, request, plan).await;
            }
            cmd_stress(cluster, runtime, request, compare).await
        }),
        Command::Logs {
            runtime,
            nodes,
            follow,
            tail,
            since,
            timestamps,
            prometheus,
        } => block_on(cmd_logs(
            runtime,
            logs::LogRequest {
                sources: nodes,
                tail,
                since: since.map(|d| d.0),
                timestamps,
                prometheus,
            },
            follow,
        )),
        Command::Init {
            connections,
            runtime,
            name,
            out,
            force,
            format,
        } => cmd_init(
            init::InitRequest {
                name,
                connections,
                runtime: runtime_kind(runtime),
            },
            &out,
            force,
            format.get(),
        ),
        Command::Completions { shell, format } => cmd_completions(shell, format.get()),
        Command::Man { format } => cmd_man(format.get()),
    };
    let outcome = match result {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<InvalidFile>().is_some() {
                Outcome::InvalidFile
            } else {
                Outcome::Failed
            }
        }
    };
    ExitCode::from(outcome.code())
}

/// `completions`: the script as text, or inside one JSON document.
fn cmd_completions(shell: ShellArg, format: Format) -> anyhow::Result<Outcome> {
    let (generator, name) = match shell {
        ShellArg::Bash => (clap_complete::Shell::Bash, "bash"),
        ShellArg::Zsh => (clap_complete::Shell::Zsh, "zsh"),
        ShellArg::Fish => (clap_complete::Shell::Fish, "fish"),
    };
    let mut script = Vec::new();
    clap_complete::generate(generator, &mut Cli::command(), "erlmcp-gen", &mut script);
    match format {
        Format::Json => print_json(
            "completions",
            &output::CompletionsOutput {
                shell: name,
                script: String::from_utf8(script).context("completion script is not UTF-8")?,
            },
        )?,
        Format::Text => std::io::stdout()
            .lock()
            .write_all(&script)
            .context("writing the completion script")?,
    }
    Ok(Outcome::Success)
}

/// `man`: the page as roff, or inside one JSON document.
fn cmd_man(format: Format) -> anyhow::Result<Outcome> {
    let mut roff = Vec::new();
    let page = clap_mangen::Man::new(Cli::command());
    page.render(&mut roff).context("rendering the man page")?;
    match format {
        Format::Json => print_json(
            "man",
            &output::ManOutput {
                section: 1,
                roff: String::from_utf8(roff).context("man page is not UTF-8")?,
            },
        )?,
        Format::Text => std::io::stdout()
            .lock()
            .write_all(&roff)
            .context("writing the man page")?,
    }
    Ok(Outcome::Success)
}

/// Prints one JSON document on stdout: the only thing there with `--format json`.
fn print_json<T: Serialize>(command: &'static str, body: &T) -> anyhow::Result<()> {
    let text = output::to_json(command, body)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
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
        None => Err(InvalidFile { path: loaded.path }.into()),
    }
}

fn cmd_validate(
    path: &Path,
    with_host: bool,
    probe: bool,
    format: Format,
) -> anyhow::Result<Outcome> {
    let loaded = config::load(path)?;
    let validated = validate::file(&loaded.path, &loaded.text);
    let found = &validated.findings;
    let cluster = validated.valid_cluster();
    let host_checks = match (with_host, cluster) {
        (true, Some(cluster)) => {
            let facts = host::read_facts(cluster, probe);
            Some((host::judge(cluster, &facts), facts))
        }
        _ => None,
    };
    let host_fails = host_checks
        .as_ref()
        .is_some_and(|(checks, _)| checks.iter().any(|c| c.verdict == host::Verdict::Fail));
    let valid = cluster.is_some();
    let errors = found
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let outcome = if !valid {
        Outcome::InvalidFile
    } else if host_fails {
        Outcome::HostCannotRun
    } else {
        Outcome::Success
    };
    match format {
        Format::Json => print_json(
            "validate",
            &output::ValidateOutput {
                file: &loaded.path,
                valid,
                errors,
                warnings: found.len() - errors,
                diagnostics: found
                    .iter()
                    .map(|d| d.locate(&loaded.path, &loaded.text))
                    .collect(),
                host: host_checks.as_ref().map(|(checks, facts)| {
                    output::HostOutput::new(facts, checks, cluster.map_or(0, host::sessions_asked))
                }),
            },
        )?,
        Format::Text => {
            // Findings are diagnostics (stderr); the verdict and the host table are the result.
            let text = diagnostic::render_all(found, &loaded.path, &loaded.text, true);
            let _ = write!(terminal::stderr(), "{text}");
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
                if let (Some(first), Some(cluster)) = (host::binds_first(checks), cluster) {
                    let asked = host::sessions_asked(cluster);
                    println!(
                        "\nBinds first: {} at {} sessions; the file asks {} ([stress] connections){}",
                        first.limit,
                        host::system_limits::grouped(first.sessions),
                        host::system_limits::grouped(asked),
                        if first.sessions >= asked {
                            ", which fit"
                        } else {
                            ", which do not fit"
                        }
                    );
                }
                if host_fails {
                    eprintln!("\nThis machine cannot run {} as written.", loaded.path);
                }
            }
            if !valid {
                eprintln!(
                    "{}: invalid ({errors} error{})",
                    loaded.path,
                    if errors == 1 { "" } else { "s" }
                );
            }
        }
    }
    Ok(outcome)
}

fn cmd_render(path: &Path, out: &Path, check: bool, format: Format) -> anyhow::Result<Outcome> {
    let cluster = load_valid(path)?;
    // The compose file's `build:` must resolve from where it is written.
    let build =
        render::ComposeBuild::for_dir(out, erlmcp_gen::engine::image::workspace_root().as_deref());
    let files = render::render_for(&cluster, &build)?;
    let document = |statuses: Vec<output::RenderedFileOutput>, up_to_date| output::RenderOutput {
        file: cluster.source.clone(),
        out_dir: out.display().to_string(),
        check,
        up_to_date,
        files: statuses,
    };
    if check {
        let stale = render::stale_files(&files, out);
        if format == Format::Json {
            let statuses = files
                .iter()
                .map(|file| {
                    let diff = stale.iter().find(|s| s.name == file.name);
                    output::RenderedFileOutput {
                        path: out.join(&file.name).display().to_string(),
                        status: if diff.is_some() { "stale" } else { "unchanged" },
                        diff: diff.map(|s| s.diff.clone()),
                    }
                })
                .collect();
            print_json("render", &document(statuses, Some(stale.is_empty())))?;
        } else if stale.is_empty() {
            println!("{} is up to date with {}", out.display(), cluster.source);
        } else {
            for file in &stale {
                print!("{}", file.diff);
            }
        }
        if stale.is_empty() {
            return Ok(Outcome::Success);
        }
        eprintln!(
            "error: {} file(s) in {} are stale; run `erlmcp-gen render {} -o {}` and commit the result",
            stale.len(),
            out.display(),
            cluster.source,
            out.display()
        );
        return Ok(Outcome::Stale);
    }
    let written =
        render::write(&files, out).with_context(|| format!("writing {}", out.display()))?;
    match format {
        Format::Json => {
            let statuses = written
                .iter()
                .map(|path| output::RenderedFileOutput {
                    path: path.display().to_string(),
                    status: "written",
                    diff: None,
                })
                .collect();
            print_json("render", &document(statuses, None))?;
        }
        Format::Text => {
            for path in written {
                println!("wrote {}", path.display());
            }
        }
    }
    Ok(Outcome::Success)
}

fn block_on(
    future: impl std::future::Future<Output = anyhow::Result<Outcome>>,
) -> anyhow::Result<Outcome> {
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
    let runtime = Runtime::select(&cluster, args.runtime.map(runtime_kind), &progress).await?;
    Ok((cluster, runtime, progress))
}

async fn cmd_plan(args: RuntimeArgs, detailed_exitcode: bool) -> anyhow::Result<Outcome> {
    let (cluster, runtime, progress) = runtime_for(&args).await?;
    let prepared = runtime.prepare(&cluster, &progress).await?;
    let plan = prepared.plan(&cluster).await?;
    match args.format.get() {
        Format::Json => print_json("plan", &output::PlanOutput::from(&plan))?,
        Format::Text => print!("{}", plan.to_text()),
    }
    // Changes are the normal result of a plan; only a script that asks gets a distinct code.
    Ok(if detailed_exitcode && plan.has_changes() {
        Outcome::ChangesPending
    } else {
        Outcome::Success
    })
}

async fn cmd_apply(
    args: RuntimeArgs,
    health_timeout: Option<std::time::Duration>,
) -> anyhow::Result<Outcome> {
    let (mut cluster, runtime, progress) = runtime_for(&args).await?;
    if cluster.prometheus.enabled {
        // Nothing can provide Prometheus: the cluster still comes up, without it, and says so.
        let missing = metrics_collection::missing_prometheus(&runtime, &cluster).await;
        if let Some(why) = &missing {
            progress.warn(metrics_collection::warning(why));
            cluster.prometheus.enabled = false;
        }
        metrics_collection::record(&metrics_collection::note_dir(&cluster), missing.as_deref())?;
    }
    let prepared = runtime.prepare(&cluster, &progress).await?;
    let plan = prepared.plan(&cluster).await?;
    let format = args.format.get();
    let text = format == Format::Text && !args.quiet;
    if text {
        print!("{}", plan.to_text());
    }
    let applied = plan.has_changes();
    if applied {
        prepared
            .apply(&cluster, &plan, &progress, health_timeout)
            .await?;
    }
    match format {
        Format::Json => print_json(
            "apply",
            &output::ApplyOutput {
                plan: output::PlanOutput::from(&plan),
                applied,
            },
        )?,
        Format::Text if text && applied => println!("applied: {}", cluster.source),
        Format::Text if text => println!("nothing to do: no resource was touched"),
        Format::Text => {}
    }
    Ok(Outcome::Success)
}

async fn cmd_status(
    args: RuntimeArgs,
    watch: Option<std::time::Duration>,
) -> anyhow::Result<Outcome> {
    let (cluster, runtime, _) = runtime_for(&args).await?;
    let format = args.format.get();
    let deadline = watch.map(|d| std::time::Instant::now() + d);
    loop {
        let mut status = runtime.status(&cluster).await?;
        if status.prometheus.is_err()
            && let Some(why) = metrics_collection::recorded(&metrics_collection::note_dir(&cluster))
        {
            status.prometheus = Err(metrics_collection::status_reason(&why));
        }
        match format {
            Format::Json if watch.is_some() => {
                let line = output::to_json_line("status", &output::StatusOutput::from(&status))?;
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(line.as_bytes())?;
                stdout.flush()?;
            }
            Format::Json => print_json("status", &output::StatusOutput::from(&status))?,
            Format::Text => {
                if watch.is_some() {
                    print!("\x1b[2J\x1b[H");
                }
                print!("{}", status.to_text());
            }
        }
        match deadline {
            Some(deadline) if std::time::Instant::now() < deadline => {
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(2)) => {}
                    _ = tokio::signal::ctrl_c() => return Ok(Outcome::Success),
                }
            }
            _ => return Ok(Outcome::Success),
        }
    }
}

fn runtime_kind(choice: RuntimeChoice) -> RuntimeKind {
    match choice {
        RuntimeChoice::Docker => RuntimeKind::Docker,
        RuntimeChoice::Native => RuntimeKind::Native,
        RuntimeChoice::Swarm => RuntimeKind::Swarm,
    }
}

async fn cmd_find_max(
    cluster: Cluster,
    args: RuntimeArgs,
    request: StressRequest,
    plan: FindMaxPlan,
) -> anyhow::Result<Outcome> {
    let progress = Progress::new(args.quiet);
    let out = request
        .out
        .clone()
        .unwrap_or_else(|| stress_command::default_out_dir(&cluster.name));
    let runtime = Runtime::select(&cluster, args.runtime.map(runtime_kind), &progress).await?;
    let slo = stress_command::slo(&cluster);
    let result =
        stress_command::find_max_on(&cluster, &runtime, &request, &plan, &out, &progress).await?;
    print!("{}", result.to_text(&slo));
    println!("find-max: {}", out.join("find-max.txt").display());
    Ok(Outcome::Success)
}

async fn cmd_stress(
    cluster: Cluster,
    args: RuntimeArgs,
    request: StressRequest,
    compare: Vec<RuntimeChoice>,
) -> anyhow::Result<Outcome> {
    let progress = Progress::new(args.quiet);
    let format = args.format.get();
    let out = request
        .out
        .clone()
        .unwrap_or_else(|| stress_command::default_out_dir(&cluster.name));
    if compare.is_empty() {
        let runtime = Runtime::select(&cluster, args.runtime.map(runtime_kind), &progress).await?;
        let summary = stress_command::run_on(&cluster, &runtime, &request, &out, &progress).await?;
        let outcome = Outcome::of_stress(&summary.verdict, summary.interrupted);
        let report = out.join("report.html").display().to_string();
        match format {
            Format::Json => print_json(
                "stress",
                &output::StressOutput {
                    out_dir: out.display().to_string(),
                    report,
                    outcome: outcome.name(),
                    summary: &summary,
                },
            )?,
            Format::Text => {
                print!("{}", summary.to_text());
                println!("report: {report}");
            }
        }
        return Ok(outcome);
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
    let outcomes: Vec<Outcome> = summaries
        .iter()
        .map(|(_, s)| Outcome::of_stress(&s.verdict, s.interrupted))
        .collect();
    match format {
        Format::Json => print_json(
            "stress",
            &output::CompareOutput {
                out_dir: out.display().to_string(),
                runs: summaries
                    .iter()
                    .zip(&outcomes)
                    .map(|((name, _), outcome)| output::CompareRunOutput {
                        runtime: name.to_string(),
                        out_dir: out.join(name).display().to_string(),
                        outcome: outcome.name(),
                    })
                    .collect(),
                overhead: &rows,
            },
        )?,
        Format::Text => {
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
        }
    }
    // A failed run outranks a breached SLO: its figures are not a verdict on the cluster.
    Ok(if outcomes.contains(&Outcome::Failed) {
        Outcome::Failed
    } else if outcomes.contains(&Outcome::SloBreached) {
        Outcome::SloBreached
    } else {
        Outcome::Success
    })
}

async fn cmd_down(args: RuntimeArgs, volumes: bool) -> anyhow::Result<Outcome> {
    let (cluster, runtime, progress) = runtime_for(&args).await?;
    runtime.down(&cluster, volumes, &progress).await?;
    match args.format.get() {
        Format::Json => print_json(
            "down",
            &output::DownOutput {
                cluster: cluster.name.clone(),
                runtime: runtime.name().to_string(),
                volumes_removed: volumes,
            },
        )?,
        Format::Text if !args.quiet => println!("down: {} on {}", cluster.name, runtime.name()),
        Format::Text => {}
    }
    Ok(Outcome::Success)
}

fn cmd_init(
    request: init::InitRequest,
    out: &Path,
    force: bool,
    format: Format,
) -> anyhow::Result<Outcome> {
    let facts = host::read_facts_at(host::default_docker_socket());
    let sizing = init::size(&request, &facts, init::loopback_ports_free);
    let text = init::cluster_file(&request, &sizing);
    // Never hand a first user a file that does not validate (a bad --name, say).
    let shown = out.display().to_string();
    let validated = validate::file(&shown, &text);
    if validated.valid_cluster().is_none() {
        let findings = diagnostic::render_all(&validated.findings, &shown, &text, true);
        let _ = write!(terminal::stderr(), "{findings}");
        anyhow::bail!("init would write an invalid file; nothing was written");
    }
    if let Some(why) = sizing.does_not_fit() {
        eprintln!("warning: init: {why}");
    }
    let to_stdout = out == Path::new("-");
    if !to_stdout {
        if out.exists() && !force {
            anyhow::bail!("{shown} exists; pass --force to overwrite it, or -o another path");
        }
        std::fs::write(out, &text).with_context(|| format!("writing {shown}"))?;
    }
    match format {
        Format::Json => print_json(
            "init",
            &output::InitOutput {
                path: shown.clone(),
                sizing: &sizing,
                text: to_stdout.then_some(text),
            },
        )?,
        Format::Text if to_stdout => print!("{text}"),
        Format::Text => {
            println!("wrote {shown}");
            eprintln!("next: erlmcp-gen validate {shown} --host");
        }
    }
    Ok(Outcome::Success)
}

/// Where `logs` prints: styled text through the terminal layer, or JSON.
struct LogSink {
    printer: logs::Printer,
    format: Format,
    /// With `--format json` and no `--follow`: every line, printed as one document at the end.
    collected: Vec<logs::LogLine>,
    follow: bool,
}

impl LogSink {
    fn emit(&mut self, lines: Vec<logs::LogLine>) -> anyhow::Result<()> {
        match self.format {
            Format::Json if self.follow => {
                let mut stdout = std::io::stdout().lock();
                for line in &lines {
                    stdout.write_all(
                        output::to_json_line("logs", &output::LogLineOutput::from(line))?
                            .as_bytes(),
                    )?;
                }
                stdout.flush()?;
            }
            Format::Json => self.collected.extend(lines),
            Format::Text => {
                let mut stdout = terminal::stdout();
                for line in &lines {
                    writeln!(stdout, "{}", self.printer.format(line))?;
                }
                stdout.flush()?;
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        if self.format == Format::Json && !self.follow {
            let lines = self
                .collected
                .iter()
                .map(output::LogLineOutput::from)
                .collect();
            print_json("logs", &output::LogsOutput { lines })?;
        }
        Ok(())
    }
}

async fn cmd_logs(
    args: RuntimeArgs,
    request: logs::LogRequest,
    follow: bool,
) -> anyhow::Result<Outcome> {
    let (cluster, runtime, _) = runtime_for(&args).await?;
    let nodes: Vec<String> = cluster.nodes.iter().map(|n| n.name.clone()).collect();
    let sources = request
        .sources_of(&nodes)
        .map_err(|message| anyhow::anyhow!(message))?;
    let mut sink = LogSink {
        printer: logs::Printer::new(&sources, request.timestamps),
        format: args.format.get(),
        collected: Vec::new(),
        follow,
    };
    runtime
        .logs(&cluster, &sources, &request, follow, &mut |lines| {
            sink.emit(lines)
        })
        .await?;
    sink.finish()?;
    Ok(Outcome::Success)
}
