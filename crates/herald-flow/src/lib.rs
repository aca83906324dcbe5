//! Flows: the compiler that checks every reference of a flow against the project, and the interpreter
//! that runs it as a state machine. The interpreter performs no I/O: it stops at each effect (a callout,
//! a record to create) and the caller performs it and feeds the result back.

mod compile;
mod flow;
mod graph;
pub mod logic;
mod paths;
mod records;
mod runtime;
mod subflow;
mod warnings;

pub use flow::{
    CompiledFlow, CredentialUse, ElementKindName, NamedCredentialRuntime, RecordTrigger, ScheduledPath,
};
pub use graph::{Connector, ConnectorKind, FlowGraph, GraphElement, StartPath, StartPathKind};
pub use paths::{PathRecheck, ScheduledStart};
pub use records::RecordQuery;
pub use runtime::{
    CalloutEffect, CalloutResult, ChangeTarget, Effect, MASK, MAX_TRIGGER_DEPTH, PendingCallout,
    PreparedCallout, RecordChange, RenderedHeader, RetryAt, RunState, RunUser, SecretSource, Step,
    TRACE_KEPT, TraceEntry,
};

use herald_codes as codes;
use herald_project::{Diagnostics, Project, TriggerEvent};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A project whose every file loaded and every flow compiled.
#[derive(Debug)]
pub struct CompiledProject {
    pub project: Project,
    /// The zone formulas evaluate in (`[runtime] timezone`, UTC by default).
    pub timezone: herald_expr::Tz,
    pub flows: IndexMap<String, Arc<CompiledFlow>>,
    pub named_credentials: IndexMap<String, Arc<NamedCredentialRuntime>>,
    /// Problems that do not stop the project from loading (`HWxxx`), to show and log.
    pub warnings: Vec<herald_project::Diagnostic>,
}

impl CompiledProject {
    /// The evaluation context for this moment, in the project's time zone.
    pub fn eval_context(&self) -> herald_expr::EvalContext {
        herald_expr::EvalContext::new(chrono::Utc::now()).with_zone(self.timezone)
    }

    /// Active flows triggered by a change of `object`, in name order.
    pub fn triggered_flows<'a>(
        &'a self,
        object: &'a str,
        created: bool,
    ) -> impl Iterator<Item = &'a Arc<CompiledFlow>> + 'a {
        self.flows.values().filter(move |flow| {
            flow.active
                && flow.trigger.as_ref().is_some_and(|trigger| {
                    trigger.object == object
                        && match trigger.event {
                            TriggerEvent::Create => created,
                            TriggerEvent::Update => !created,
                            TriggerEvent::CreateOrUpdate => true,
                        }
                })
        })
    }
}

/// Loads and compiles the project in `dir`; every problem of every file is reported at once.
pub fn load(dir: &Path) -> Result<CompiledProject, Diagnostics> {
    let (project, diagnostics) = herald_project::load_dir(dir);
    finish(project, diagnostics)
}

/// Loads and compiles a project given as files in memory (the bundled example).
pub fn load_files(root: PathBuf, files: Vec<(PathBuf, String)>) -> Result<CompiledProject, Diagnostics> {
    let (project, diagnostics) = herald_project::load_files(root, files);
    finish(project, diagnostics)
}

fn finish(project: Option<Project>, mut diagnostics: Diagnostics) -> Result<CompiledProject, Diagnostics> {
    let Some(project) = project else {
        diagnostics.sort();
        return Err(diagnostics);
    };
    let timezone = match project.config.runtime.timezone.as_deref() {
        None => herald_expr::Tz::UTC,
        Some(name) => herald_expr::EvalContext::parse_zone(name).unwrap_or_else(|error| {
            diagnostics.push(
                herald_project::Diagnostic::new(
                    codes::HP023,
                    "herald.toml",
                    format!("[runtime] timezone: {error}"),
                )
                .hint("use an IANA zone name such as America/New_York or Europe/Paris"),
            );
            herald_expr::Tz::UTC
        }),
    };
    if let Some(country) = project.config.runtime.default_country.as_deref()
        && let Err(error) = herald_sms::parse_country(country)
    {
        diagnostics.push(
            herald_project::Diagnostic::new(
                codes::HP028,
                "herald.toml",
                format!("[runtime] default_country: {error}"),
            )
            .hint("use an ISO 3166 alpha-2 code such as US, GB or SG, or remove the key"),
        );
    }
    compile::lookup_fields(&project, &mut diagnostics);
    let named_credentials = compile::named_credentials(&project, &mut diagnostics);
    compile::subflows::check_graph(&project, &mut diagnostics);
    let mut flows = IndexMap::new();
    for (name, flow) in &project.flows {
        match compile::compile_flow(&project, flow) {
            Ok(compiled) => {
                flows.insert(name.clone(), Arc::new(compiled));
            }
            Err(mut found) => diagnostics.0.append(&mut found),
        }
    }
    if !diagnostics.is_empty() {
        diagnostics.sort();
        return Err(diagnostics);
    }
    compile::subflows::link(&flows);
    let mut warnings = project.warnings.clone();
    warnings.extend(warnings::template_warnings(&project));
    warnings.extend(warnings::text_template_html_warnings(&project));
    warnings.extend(warnings::repeated_scheduled_path_warnings(&project));
    warnings.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Ok(CompiledProject { project, timezone, flows, named_credentials, warnings })
}
