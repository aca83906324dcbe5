//! `herald service import` and `herald service show`.

use crate::serve::load_project;
use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::ExitCode;

/// Checks the spec imports (so a broken file is refused before anything is written), then writes the
/// spec and the service file into the project's services/ folder.
pub fn import(
    spec: &Path,
    name: &str,
    credential: &str,
    operations: &[String],
    server: Option<&str>,
    project: &Path,
) -> Result<ExitCode> {
    if !herald_project::is_api_name(name) {
        bail!(
            "`{name}` is not a valid service name: use letters, digits and single underscores, starting with a letter"
        );
    }
    let text = std::fs::read_to_string(spec).with_context(|| format!("cannot read {}", spec.display()))?;
    let options = herald_openapi::ImportOptions {
        operations: (!operations.is_empty()).then(|| operations.to_vec()),
        server: server.map(str::to_string),
    };
    let service = match herald_openapi::import(&text, name, credential, &options) {
        Ok(service) => service,
        Err(error) => {
            eprintln!("{}: {error}", spec.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let services = project.join("services");
    std::fs::create_dir_all(&services).with_context(|| format!("cannot create {}", services.display()))?;
    let extension = if text.trim_start().starts_with('{') { "json" } else { "yaml" };
    let spec_name = format!("{name}.openapi.{extension}");
    let service_file = services.join(format!("{name}.yaml"));
    if service_file.exists() {
        bail!("{} already exists; remove it first to import again", service_file.display());
    }
    let mut yaml = format!("kind: external-service\nnamed_credential: {credential}\nspec: {spec_name}\n");
    if !operations.is_empty() {
        yaml.push_str(&format!("operations: [{}]\n", operations.join(", ")));
    }
    if let Some(server) = server {
        yaml.push_str(&format!("server: {server}\n"));
    }
    std::fs::write(services.join(&spec_name), &text)?;
    std::fs::write(&service_file, yaml)?;
    println!("Wrote {} and services/{spec_name}:", service_file.display());
    print!("{}", herald_openapi::describe(&service));
    Ok(ExitCode::SUCCESS)
}

pub fn show(project: &Path, name: &str) -> Result<ExitCode> {
    let Ok(compiled) = load_project(project) else { return Ok(ExitCode::FAILURE) };
    let Some(service) = compiled.project.services.get(name) else {
        let hint = herald_project::did_you_mean(name, compiled.project.services.keys().map(String::as_str))
            .unwrap_or_else(|| {
                format!(
                    "services: {}",
                    compiled.project.services.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            });
        bail!("no service named `{name}` in {}; {hint}", project.display());
    };
    print!("{}", herald_openapi::describe(&service.def.model));
    Ok(ExitCode::SUCCESS)
}
