//! Flows: the compiler that checks every reference of a flow against the project, and the interpreter
//! that runs it as a state machine. The interpreter performs no I/O: it stops at each effect (a callout,
//! a record to create) and the caller performs it and feeds the result back.

mod compile;
mod flow;
pub mod logic;
mod runtime;

pub use flow::{CompiledFlow, CredentialUse, ElementKindName, NamedCredentialRuntime};
pub use runtime::{
    CalloutResult, Effect, MASK, PendingCallout, PreparedCallout, RunState, RunUser, SecretSource, Step,
    TraceEntry,
};

use herald_project::{Diagnostics, Project, TriggerEvent};
use indexmap::IndexMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A project whose every file loaded and every flow compiled.
#[derive(Debug)]
pub struct CompiledProject {
    pub project: Project,
    pub flows: IndexMap<String, Arc<CompiledFlow>>,
    pub named_credentials: IndexMap<String, Arc<NamedCredentialRuntime>>,
}

impl CompiledProject {
    /// Active flows triggered by a change of `object`, in name order.
    pub fn triggered_flows<'a>(
        &'a self,
        object: &'a str,
        created: bool,
    ) -> impl Iterator<Item = &'a Arc<CompiledFlow>> + 'a {
        self.flows.values().filter(move |flow| {
            flow.active
                && flow.object == object
                && match flow.event {
                    TriggerEvent::Create => created,
                    TriggerEvent::Update => !created,
                    TriggerEvent::CreateOrUpdate => true,
                }
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
    let named_credentials = compile::named_credentials(&project, &mut diagnostics);
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
    Ok(CompiledProject { project, flows, named_credentials })
}
