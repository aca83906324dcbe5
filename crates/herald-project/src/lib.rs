//! The project folder: `herald.toml`, `objects/`, `credentials/`, `services/`, `permissions/`, `flows/`.
//!
//! Loading reads every file, checks what can be checked without compiling flows, and collects every
//! problem with its file, line and column. Flows are compiled by `herald-flow`, which adds its own
//! problems to the same list; a project with any problem is never used.

pub mod diagnostics;
pub mod files;
pub mod locator;
pub mod model;

use diagnostics::strip_quoted_values;
pub use diagnostics::{Diagnostic, Diagnostics, Position, closest, did_you_mean};
pub use files::{MAX_SPEC_BYTES, MAX_TOML_BYTES, MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES, read_dir};
use herald_codes::{self as codes, Code};
pub use locator::{Locator, YamlPath};
pub use model::*;

use herald_openapi::limits::{Limits, ShapeError};
use herald_openapi::{Method, Service, infer_callout_action};
use herald_providers::Provider;
use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// One file of the project, kept so that later stages can point into it.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// Relative to the project folder (`flows/Lead_Welcome_SMS.yaml`).
    pub path: PathBuf,
    pub text: String,
    pub locator: Locator,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SourceId(usize);

/// A definition and the file it came from.
#[derive(Clone, Debug)]
pub struct Located<T> {
    pub def: T,
    pub source: SourceId,
}

/// An HTTP callout or external service, with its model and provider rules.
#[derive(Clone, Debug)]
pub struct ServiceEntry {
    pub model: Service,
    pub provider: Provider,
    /// An external service's OpenAPI file, relative to the project folder (as its warnings name it);
    /// `None` for an HTTP callout.
    pub spec: Option<PathBuf>,
}

/// Fields every object has without declaring them.
pub const STANDARD_FIELDS: [(&str, FieldType); 3] =
    [("Id", FieldType::Id), ("CreatedDate", FieldType::Datetime), ("LastModifiedDate", FieldType::Datetime)];

#[derive(Clone, Debug)]
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    pub objects: IndexMap<String, Located<ObjectDef>>,
    pub external_credentials: IndexMap<String, Located<ExternalCredentialDef>>,
    pub named_credentials: IndexMap<String, Located<NamedCredentialDef>>,
    pub permission_sets: IndexMap<String, Located<PermissionSetDef>>,
    pub services: IndexMap<String, Located<ServiceEntry>>,
    pub flows: IndexMap<String, Located<FlowDef>>,
    pub webhooks: IndexMap<String, Located<WebhookDef>>,
    /// Custom labels from `labels/`, by name (`$Label.Name`), each with the file it came from.
    pub labels: IndexMap<String, Located<LabelDef>>,
    /// Problems that do not stop the project from loading (`HWxxx`), found while reading its files.
    pub warnings: Vec<Diagnostic>,
    sources: Vec<SourceFile>,
}

impl Project {
    pub fn source(&self, id: SourceId) -> &SourceFile {
        &self.sources[id.0]
    }

    /// A diagnostic pointing at the key `path` of a file.
    pub fn at_key(
        &self,
        id: SourceId,
        path: &YamlPath,
        code: Code,
        message: impl Into<String>,
    ) -> Diagnostic {
        let source = self.source(id);
        Diagnostic::new(code, &source.path, message).at(source.locator.key(path))
    }

    /// A diagnostic pointing `offset` bytes into the value at `path` (exact for one-line scalars).
    pub fn at_value(
        &self,
        id: SourceId,
        path: &YamlPath,
        offset: Option<usize>,
        code: Code,
        message: impl Into<String>,
    ) -> Diagnostic {
        let source = self.source(id);
        Diagnostic::new(code, &source.path, message).at(source.locator.value(path, offset))
    }

    /// The object's id prefix (Lead `00Q`).
    pub fn key_prefix(&self, object: &str) -> Option<&str> {
        self.objects.get(object).and_then(|o| o.def.key_prefix.as_deref())
    }
}

/// Reads a project folder. Returns what could be read, with every problem found; callers must not use
/// the project when the problems are not empty (`herald_flow::load` enforces that).
pub fn load_dir(root: &Path) -> (Option<Project>, Diagnostics) {
    let (files, mut diagnostics) = files::read_dir(root);
    let Some(files) = files else { return (None, diagnostics) };
    let (project, more) = load_files(root.to_path_buf(), files);
    diagnostics.0.extend(more.0);
    (project, diagnostics)
}

/// Reads a project from files already in memory (the bundled example, tests). Paths are relative to
/// `root`; `herald.toml` must be among them.
pub fn load_files(root: PathBuf, files: Vec<(PathBuf, String)>) -> (Option<Project>, Diagnostics) {
    let mut loader = Loader { diagnostics: Diagnostics::default(), sources: Vec::new() };
    let mut config = None;
    let mut project_files = Vec::new();
    let mut spec_files: IndexMap<PathBuf, String> = IndexMap::new();
    for (path, text) in files {
        let toml = path == Path::new("herald.toml");
        let spec = !toml && is_spec_file(&path, &text);
        let limit = match (toml, spec) {
            (true, _) => MAX_TOML_BYTES,
            (_, true) => MAX_SPEC_BYTES,
            _ => MAX_YAML_BYTES,
        };
        if text.len() > limit {
            loader.diagnostics.push(
                Diagnostic::new(
                    codes::HP031,
                    &path,
                    format!(
                        "the file is {} bytes; herald reads files of at most {} ({limit} bytes) here",
                        text.len(),
                        files::mib(limit)
                    ),
                )
                .hint(files::size_hint(&path)),
            );
            continue;
        }
        if toml {
            config = loader.config(&path, &text);
        } else if spec {
            spec_files.insert(path, text);
        } else {
            project_files.push((path, text));
        }
    }
    let config = match config {
        Some(config) => config,
        // A broken herald.toml is reported; the other files are still checked with the defaults.
        None if !loader.diagnostics.is_empty() => Config::default(),
        None => {
            loader.diagnostics.push(
                Diagnostic::new(codes::HP001, root.join("herald.toml"), "the project has no herald.toml")
                    .hint("create herald.toml (see docs/project-format.md)"),
            );
            return (None, loader.diagnostics);
        }
    };

    let mut project = Project {
        root,
        config,
        objects: IndexMap::new(),
        external_credentials: IndexMap::new(),
        named_credentials: IndexMap::new(),
        permission_sets: IndexMap::new(),
        services: IndexMap::new(),
        flows: IndexMap::new(),
        webhooks: IndexMap::new(),
        labels: IndexMap::new(),
        warnings: Vec::new(),
        sources: Vec::new(),
    };
    let mut raw_services = Vec::new();
    for (path, text) in project_files {
        let folder = path.components().next().and_then(|c| c.as_os_str().to_str()).unwrap_or("").to_string();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("").to_string();
        // A file that is not YAML, or is past the limits, never reaches serde.
        let Some(id) = loader.add_source(&path, text) else { continue };
        let kind = loader.kind(id);
        match (folder.as_str(), kind.as_deref()) {
            ("objects", None | Some("object")) => {
                if let Some(mut def) = loader.parse::<ObjectDef>(id) {
                    loader.check_name(id, &mut def.name, &stem);
                    insert(&mut loader, &mut project.objects, id, def.name.clone(), def, "object");
                }
            }
            ("credentials", Some("external-credential")) => {
                if let Some(mut def) = loader.parse::<ExternalCredentialDef>(id) {
                    loader.check_name(id, &mut def.name, &stem);
                    insert(
                        &mut loader,
                        &mut project.external_credentials,
                        id,
                        def.name.clone(),
                        def,
                        "credential",
                    );
                }
            }
            ("credentials", Some("named-credential")) => {
                if let Some(mut def) = loader.parse::<NamedCredentialDef>(id) {
                    loader.check_name(id, &mut def.name, &stem);
                    insert(
                        &mut loader,
                        &mut project.named_credentials,
                        id,
                        def.name.clone(),
                        def,
                        "credential",
                    );
                }
            }
            ("services", Some("http-callout")) => {
                if let Some(mut def) = loader.parse::<CalloutServiceDef>(id) {
                    loader.check_name(id, &mut def.name, &stem);
                    raw_services.push((id, RawService::Callout(def)));
                }
            }
            ("services", Some("external-service")) => {
                if let Some(mut def) = loader.parse::<ExternalServiceDef>(id) {
                    loader.check_name(id, &mut def.name, &stem);
                    raw_services.push((id, RawService::External(def)));
                }
            }
            ("permissions", None | Some("permission-set")) => {
                if let Some(mut def) = loader.parse::<PermissionSetDef>(id) {
                    loader.check_name(id, &mut def.name, &stem);
                    insert(
                        &mut loader,
                        &mut project.permission_sets,
                        id,
                        def.name.clone(),
                        def,
                        "permission set",
                    );
                }
            }
            ("flows", None | Some("flow")) => {
                if let Some(mut def) = loader.parse::<FlowDef>(id) {
                    loader.check_name(id, &mut def.name, &stem);
                    insert(&mut loader, &mut project.flows, id, def.name.clone(), def, "flow");
                }
            }
            ("webhooks", None | Some("webhook")) => {
                if let Some(mut def) = loader.parse::<WebhookDef>(id) {
                    loader.check_name(id, &mut def.name, &stem);
                    insert(&mut loader, &mut project.webhooks, id, def.name.clone(), def, "webhook");
                }
            }
            // A labels file is a mapping of label names; it has no `kind`.
            ("labels", None) => {
                if let Some(labels) = loader.parse::<IndexMap<String, LabelDef>>(id) {
                    for (name, def) in labels {
                        loader.label(&mut project.labels, id, name, def);
                    }
                }
            }
            (_, Some(other)) => {
                let expected = expected_kinds(&folder);
                let hint = did_you_mean(other, expected.iter().copied())
                    .unwrap_or_else(|| format!("files in {folder}/ have kind {}", expected.join(" or ")));
                loader.at_key(
                    id,
                    &YamlPath::root().key("kind"),
                    codes::HP004,
                    format!("unknown kind `{other}` here"),
                    Some(hint),
                );
            }
            // A file that is not YAML at all: report the syntax error, not a missing kind.
            (_, None) if loader.parse::<serde_json::Value>(id).is_none() => {}
            (_, None) => {
                loader.at_key(
                    id,
                    &YamlPath::root(),
                    codes::HP004,
                    "the file has no `kind`".into(),
                    Some(format!("add `kind: {}`", expected_kinds(&folder).join("` or `kind: "))),
                );
            }
        }
    }
    project.sources = std::mem::take(&mut loader.sources);

    let mut checks = Checks { project: &project, diagnostics: Diagnostics::default(), warnings: Vec::new() };
    checks.objects();
    checks.credentials();
    checks.permission_sets();
    checks.webhooks();
    let services = checks.services(raw_services, &spec_files);
    let mut diagnostics = loader.diagnostics;
    diagnostics.0.extend(checks.diagnostics.0);
    let warnings = checks.warnings;
    project.services = services;
    project.warnings = warnings;
    (Some(project), diagnostics)
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Custom => "custom",
        Protocol::NoAuthentication => "no_authentication",
        Protocol::Basic => "basic",
        Protocol::OAuth2ClientCredentials => "oauth2_client_credentials",
    }
}

enum RawService {
    Callout(CalloutServiceDef),
    External(ExternalServiceDef),
}

/// OpenAPI files sit in services/ beside the service files that name them.
fn is_spec_file(path: &Path, text: &str) -> bool {
    let in_services = path.components().next().is_some_and(|c| c.as_os_str() == "services");
    if !in_services {
        return false;
    }
    if path.extension().is_some_and(|e| e == "json") {
        return true;
    }
    // A YAML spec starts with `openapi:` or `swagger:` where a service file has `kind:`.
    text.lines().any(|l| l.starts_with("openapi:") || l.starts_with("swagger:"))
        && !text.lines().any(|l| l.starts_with("kind:"))
}

/// `services/../specs/x.json` -> `specs/x.json`, without touching the file system.
fn normalize_relative(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn expected_kinds(folder: &str) -> Vec<&'static str> {
    match folder {
        "objects" => vec!["object"],
        "credentials" => vec!["external-credential", "named-credential"],
        "services" => vec!["http-callout", "external-service"],
        "permissions" => vec!["permission-set"],
        "webhooks" => vec!["webhook"],
        "labels" => vec!["(none: a labels file maps label names to labels)"],
        _ => vec!["flow"],
    }
}

fn insert<T>(
    loader: &mut Loader,
    map: &mut IndexMap<String, Located<T>>,
    id: SourceId,
    name: String,
    def: T,
    what: &str,
) {
    if map.contains_key(&name) {
        loader.at_key(
            id,
            &YamlPath::root().key("name"),
            codes::HP005,
            format!("a {what} named `{name}` is defined twice"),
            Some("rename one of them".into()),
        );
    } else {
        map.insert(name, Located { def, source: id });
    }
}

struct Loader {
    diagnostics: Diagnostics,
    sources: Vec<SourceFile>,
}

/// The bounds every YAML project file is checked against before it is parsed.
const YAML_LIMITS: Limits = Limits { max_depth: MAX_YAML_DEPTH, max_nodes: MAX_YAML_NODES };

impl Loader {
    /// Indexes a YAML file; a syntax error or a file past the limits is reported, and the file is not
    /// kept (nothing after this reads it).
    fn add_source(&mut self, path: &Path, text: String) -> Option<SourceId> {
        match Locator::index(&text, YAML_LIMITS) {
            Ok(locator) => {
                self.sources.push(SourceFile { path: path.to_path_buf(), text, locator });
                Some(SourceId(self.sources.len() - 1))
            }
            Err(error) => {
                self.diagnostics.push(shape_diagnostic(path, &error));
                None
            }
        }
    }

    fn at_key(&mut self, id: SourceId, path: &YamlPath, code: Code, message: String, hint: Option<String>) {
        let source = &self.sources[id.0];
        self.diagnostics
            .push(Diagnostic::new(code, &source.path, message).at(source.locator.key(path)).maybe_hint(hint));
    }

    fn config(&mut self, path: &Path, text: &str) -> Option<Config> {
        match toml::from_str::<Config>(text) {
            Ok(config) => {
                if let Some(url) = &config.database.url
                    && !is_postgres_url(url)
                {
                    // The URL itself is not repeated: it may hold a password.
                    let at =
                        text.find("url").map(|offset| position_of_offset(text, offset)).unwrap_or_default();
                    self.diagnostics.push(
                        Diagnostic::new(
                            codes::HP035,
                            path,
                            "herald.toml: [database] url is not a PostgreSQL URL".to_string(),
                        )
                        .at(at)
                        .hint("write postgres://USER@HOST:PORT/DATABASE, or remove `url` and set `path` for a SQLite file"),
                    );
                    return None;
                }
                Some(config)
            }
            Err(error) => {
                let position =
                    error.span().map(|span| position_of_offset(text, span.start)).unwrap_or_default();
                let message = strip_quoted_values(error.message());
                self.diagnostics.push(
                    Diagnostic::new(codes::HP003, path, format!("herald.toml: {message}"))
                        .at(position)
                        .maybe_hint(
                            serde_hint(&message).or_else(|| Some("see docs/project-format.md".into())),
                        ),
                );
                None
            }
        }
    }

    fn kind(&self, id: SourceId) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct KindOnly {
            kind: Option<String>,
        }
        yaml_serde::from_str::<KindOnly>(&self.sources[id.0].text).ok().and_then(|k| k.kind)
    }

    fn parse<T: DeserializeOwned>(&mut self, id: SourceId) -> Option<T> {
        let source = &self.sources[id.0];
        match yaml_serde::from_str::<T>(&source.text) {
            Ok(value) => Some(value),
            Err(error) => {
                let position = error
                    .location()
                    .map(|l| Position { line: l.line(), column: l.column() })
                    .unwrap_or(Position { line: 1, column: 1 });
                let message = strip_quoted_values(&strip_location(&error.to_string()));
                let hint = serde_hint(&message);
                self.diagnostics
                    .push(Diagnostic::new(codes::HP003, &source.path, message).at(position).maybe_hint(hint));
                None
            }
        }
    }

    /// One custom label: an API name, defined once across every file of `labels/`.
    fn label(
        &mut self,
        labels: &mut IndexMap<String, Located<LabelDef>>,
        id: SourceId,
        name: String,
        def: LabelDef,
    ) {
        let path = YamlPath::root().key(&name);
        if !is_api_name(&name) {
            self.at_key(
                id,
                &path,
                codes::HF044,
                format!("`{name}` is not a valid custom label name"),
                Some(
                    "use letters, digits and single underscores, starting with a letter (`Welcome_Text`)"
                        .into(),
                ),
            );
            return;
        }
        if let Some((_, existing)) = labels.iter().find(|(other, _)| other.eq_ignore_ascii_case(&name)) {
            let first = self.sources[existing.source.0].path.display().to_string();
            self.at_key(
                id,
                &path,
                codes::HF044,
                format!("the custom label `{name}` is already defined in {first}"),
                Some("rename one of them, or keep one definition".into()),
            );
            return;
        }
        labels.insert(name, Located { def, source: id });
    }

    fn check_name(&mut self, id: SourceId, name: &mut String, stem: &str) {
        if name.is_empty() {
            *name = stem.to_string();
        } else if name != stem {
            self.at_key(
                id,
                &YamlPath::root().key("name"),
                codes::HP006,
                format!("the name `{name}` differs from the file name `{stem}`"),
                Some(format!("rename the file to {name}.yaml, or drop the `name` key")),
            );
        }
        if !is_api_name(name) {
            self.at_key(
                id,
                &YamlPath::root().key("name"),
                codes::HP007,
                format!("`{name}` is not a valid API name"),
                Some("use letters, digits and single underscores, starting with a letter".into()),
            );
        }
    }
}

/// How to get rid of a header that project files may not set.
fn header_fix(reason: &str) -> &'static str {
    if reason.contains("not an HTTP header name") {
        "correct the header's name"
    } else {
        "remove the header: herald and its HTTP client set it themselves"
    }
}

/// A YAML file that is malformed (HP003), nests too deeply (HP032) or holds too many nodes (HP033).
fn shape_diagnostic(path: &Path, error: &ShapeError) -> Diagnostic {
    let (line, column) = error.position();
    let diagnostic = match error {
        ShapeError::Syntax { message, .. } => Diagnostic::new(codes::HP003, path, message.clone())
            .hint("fix the YAML syntax at this position (indentation, a missing `:`, an unclosed bracket or quote)"),
        ShapeError::TooDeep { max, .. } => Diagnostic::new(
            codes::HP032,
            path,
            format!("the YAML nests deeper than {max} levels here; herald reads project files of at most {max} levels"),
        )
        .hint("flatten the structure: project files need a handful of levels, samples a few more"),
        ShapeError::TooManyNodes { max, .. } => Diagnostic::new(
            codes::HP033,
            path,
            format!(
                "the file holds more than {max} keys, values and list items (this is the first one past the limit)"
            ),
        )
        .hint(files::size_hint(path)),
    };
    diagnostic.at(Position { line, column })
}

/// Salesforce API names: a letter first, then letters, digits and underscores, no double underscore,
/// no trailing underscore.
pub fn is_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.contains("__")
        && !name.ends_with('_')
}

fn position_of_offset(text: &str, offset: usize) -> Position {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Position { line, column }
}

/// yaml_serde appends " at line L column C"; the diagnostic carries the position itself.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(cut) => message[..cut].to_string(),
        None => message.to_string(),
    }
}

/// A "did you mean" from serde's "unknown field `x`, expected one of `a`, `b`" messages.
fn serde_hint(message: &str) -> Option<String> {
    let (wrong, rest) = ["unknown field `", "unknown variant `"].iter().find_map(|prefix| {
        let start = message.find(prefix)? + prefix.len();
        let end = message[start..].find('`')? + start;
        Some((&message[start..end], &message[end + 1..]))
    })?;
    let expected: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    if let Some(hint) = did_you_mean(wrong, expected.iter().copied()) {
        return Some(hint);
    }
    (!expected.is_empty()).then(|| format!("expected one of: {}", expected.join(", ")))
}

/// Checks across files, done once every file is read.
struct Checks<'a> {
    project: &'a Project,
    diagnostics: Diagnostics,
    warnings: Vec<Diagnostic>,
}

impl Checks<'_> {
    fn objects(&mut self) {
        let mut prefixes: IndexMap<String, String> = IndexMap::new();
        for (name, object) in &self.project.objects {
            let root = YamlPath::root();
            if let Some(prefix) = &object.def.key_prefix {
                if prefix.len() != 3 || !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
                    self.diagnostics.push(
                        self.project
                            .at_value(
                                object.source,
                                &root.key("key_prefix"),
                                None,
                                codes::HP010,
                                format!("key_prefix `{prefix}` must be three letters or digits"),
                            )
                            .hint("Lead uses 00Q, Task 00T; pick three characters no other object uses"),
                    );
                } else if let Some(other) = prefixes.insert(prefix.clone(), name.clone()) {
                    self.diagnostics.push(self.project.at_value(
                        object.source,
                        &root.key("key_prefix"),
                        None,
                        codes::HP010,
                        format!("key_prefix `{prefix}` is already used by {other}"),
                    ));
                }
            }
            for (field, def) in &object.def.fields {
                let path = root.key("fields").key(field);
                if STANDARD_FIELDS.iter().any(|(standard, _)| standard == field) {
                    self.diagnostics.push(
                        self.project
                            .at_key(
                                object.source,
                                &path,
                                codes::HP011,
                                format!("`{field}` is a standard field and is always present"),
                            )
                            .hint("remove it from fields"),
                    );
                }
                if !is_api_name(field) && !field.ends_with("__c") {
                    self.diagnostics.push(self.project.at_key(
                        object.source,
                        &path,
                        codes::HP007,
                        format!("`{field}` is not a valid field name"),
                    ));
                }
                if def.field_type == FieldType::Picklist && def.values.is_empty() {
                    self.diagnostics.push(
                        self.project
                            .at_key(
                                object.source,
                                &path,
                                codes::HP012,
                                format!("picklist `{field}` has no values"),
                            )
                            .hint("add `values: [A, B]`"),
                    );
                }
                for target in &def.references {
                    if !self.project.objects.contains_key(target) {
                        let names = self.project.objects.keys().map(String::as_str);
                        self.diagnostics.push(
                            self.project
                                .at_key(
                                    object.source,
                                    &path.key("references"),
                                    codes::HP013,
                                    format!("`{field}` references unknown object `{target}`"),
                                )
                                .maybe_hint(did_you_mean(target, names)),
                        );
                    }
                }
            }
        }
    }

    fn credentials(&mut self) {
        for external in self.project.external_credentials.values() {
            let mut seen = Vec::new();
            for (index, principal) in external.def.principals.iter().enumerate() {
                let path = YamlPath::root().key("principals").index(index);
                if seen.contains(&principal.name) {
                    self.diagnostics.push(self.project.at_key(
                        external.source,
                        &path.key("name"),
                        codes::HP005,
                        format!("principal `{}` is defined twice", principal.name),
                    ));
                }
                seen.push(principal.name.clone());
                let required: &[&str] = match external.def.protocol {
                    Protocol::Basic => &["username", "password"],
                    Protocol::OAuth2ClientCredentials => &["client_id", "client_secret"],
                    Protocol::Custom | Protocol::NoAuthentication => &[],
                };
                for parameter in required {
                    if !principal.parameters.iter().any(|p| p == parameter) {
                        self.diagnostics.push(
                            self.project
                                .at_key(
                                    external.source,
                                    &path,
                                    codes::HP014,
                                    format!(
                                        "protocol {} needs a `{parameter}` parameter",
                                        protocol_name(external.def.protocol)
                                    ),
                                )
                                .hint(format!("parameters: [{}]", required.join(", "))),
                        );
                    }
                }
            }
            if external.def.principals.is_empty() && external.def.protocol != Protocol::NoAuthentication {
                self.diagnostics.push(
                    self.project
                        .at_key(
                            external.source,
                            &YamlPath::root().key("principals"),
                            codes::HP014,
                            "the external credential has no principal",
                        )
                        .hint("add a principal with the parameter names it holds"),
                );
            }
        }
        for external in self.project.external_credentials.values() {
            let oauth = external.def.protocol == Protocol::OAuth2ClientCredentials;
            match (&external.def.token_url, oauth) {
                (None, true) => self.diagnostics.push(
                    self.project
                        .at_key(
                            external.source,
                            &YamlPath::root().key("protocol"),
                            codes::HP026,
                            "OAuth 2.0 client credentials need a `token_url`",
                        )
                        .hint("add `token_url: https://login.example.com/oauth/token`"),
                ),
                (Some(url), true) => {
                    if let Err(why) = url_host(url) {
                        self.diagnostics.push(self.project.at_value(
                            external.source,
                            &YamlPath::root().key("token_url"),
                            None,
                            codes::HP026,
                            format!("token_url `{url}` {why}"),
                        ));
                    }
                }
                (Some(_), false) => self.diagnostics.push(
                    self.project
                        .at_key(
                            external.source,
                            &YamlPath::root().key("token_url"),
                            codes::HP026,
                            "`token_url` only applies to protocol oauth2_client_credentials",
                        )
                        .hint("remove it, or set `protocol: oauth2_client_credentials`"),
                ),
                (None, false) => {}
            }
        }
        for named in self.project.named_credentials.values() {
            let root = YamlPath::root();
            match url_host(&named.def.url) {
                Ok(_) => {}
                Err(why) => self.diagnostics.push(
                    self.project
                        .at_value(
                            named.source,
                            &root.key("url"),
                            None,
                            codes::HP015,
                            format!("url `{}` {why}", named.def.url),
                        )
                        .hint("write the base URL with its scheme, e.g. https://apig.kixie.com"),
                ),
            }
            for header in named.def.headers.keys() {
                if let Some(reason) = herald_openapi::header_refusal(header) {
                    self.diagnostics.push(
                        self.project
                            .at_key(
                                named.source,
                                &root.key("headers").key(header),
                                codes::HP034,
                                format!("a named credential cannot set the header `{header}`: {reason}"),
                            )
                            .hint(header_fix(reason)),
                    );
                }
            }
            let external = &named.def.external_credential;
            if !self.project.external_credentials.contains_key(external) {
                let names = self.project.external_credentials.keys().map(String::as_str);
                self.diagnostics.push(
                    self.project
                        .at_value(
                            named.source,
                            &root.key("external_credential"),
                            None,
                            codes::HP016,
                            format!("unknown external credential `{external}`"),
                        )
                        .maybe_hint(did_you_mean(external, names)),
                );
            }
        }
    }

    fn webhooks(&mut self) {
        let providers: Vec<&str> = Provider::with_webhooks().map(|p| p.name()).collect();
        for webhook in self.project.webhooks.values() {
            if !providers.iter().any(|p| p.eq_ignore_ascii_case(&webhook.def.provider)) {
                let hint = did_you_mean(&webhook.def.provider, providers.iter().copied())
                    .unwrap_or_else(|| format!("use one of {}", providers.join(", ")));
                self.diagnostics.push(
                    self.project
                        .at_value(
                            webhook.source,
                            &YamlPath::root().key("provider"),
                            None,
                            codes::HP027,
                            format!(
                                "webhooks come from {}, not `{}`",
                                providers.join(", "),
                                webhook.def.provider
                            ),
                        )
                        .hint(hint),
                );
            }
            let named = &webhook.def.named_credential;
            if !self.project.named_credentials.contains_key(named) {
                let names = self.project.named_credentials.keys().map(String::as_str);
                self.diagnostics.push(
                    self.project
                        .at_value(
                            webhook.source,
                            &YamlPath::root().key("named_credential"),
                            None,
                            codes::HP027,
                            format!("unknown named credential `{named}`"),
                        )
                        .maybe_hint(did_you_mean(named, names)),
                );
            }
            if let Some(url) = &webhook.def.public_url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                self.diagnostics.push(
                    self.project
                        .at_value(
                            webhook.source,
                            &YamlPath::root().key("public_url"),
                            None,
                            codes::HP027,
                            format!("public_url `{url}` is not an http(s) URL"),
                        )
                        .hint("write the full URL the provider posts to, e.g. https://herald.example.com/webhooks/Name"),
                );
            }
        }
    }

    fn permission_sets(&mut self) {
        for set in self.project.permission_sets.values() {
            for (index, grant) in set.def.external_credential_principal_access.iter().enumerate() {
                let path = YamlPath::root().key("external_credential_principal_access").index(index);
                let known =
                    self.project.external_credentials.values().flat_map(|e| {
                        e.def.principals.iter().map(move |p| format!("{}-{}", e.def.name, p.name))
                    });
                let known: Vec<String> = known.collect();
                if !known.contains(grant) {
                    let hint = did_you_mean(grant, known.iter().map(String::as_str)).or_else(|| {
                        Some(
                            "write `ExternalCredential-Principal`, e.g. Kixie_API_Auth-Kixie_Principal"
                                .into(),
                        )
                    });
                    self.diagnostics.push(
                        self.project
                            .at_value(
                                set.source,
                                &path,
                                None,
                                codes::HP017,
                                format!("`{grant}` names no external credential principal"),
                            )
                            .maybe_hint(hint),
                    );
                }
            }
        }
        for (index, name) in self.project.config.automation.permission_sets.iter().enumerate() {
            if !self.project.permission_sets.contains_key(name) {
                let names = self.project.permission_sets.keys().map(String::as_str);
                let _ = index;
                self.diagnostics.push(
                    Diagnostic::new(
                        codes::HP018,
                        "herald.toml",
                        format!("[automation] permission_sets names unknown permission set `{name}`"),
                    )
                    .maybe_hint(did_you_mean(name, names)),
                );
            }
        }
    }

    fn services(
        &mut self,
        raw: Vec<(SourceId, RawService)>,
        spec_files: &IndexMap<PathBuf, String>,
    ) -> IndexMap<String, Located<ServiceEntry>> {
        let mut services = IndexMap::new();
        for (id, raw) in raw {
            let def = match raw {
                RawService::Callout(def) => def,
                RawService::External(def) => {
                    if let Some(entry) = self.external_service(id, &def, spec_files) {
                        services.insert(def.name.clone(), Located { def: entry, source: id });
                    }
                    continue;
                }
            };
            let root = YamlPath::root();
            let provider = self.service_provider(id, &def.named_credential, def.provider.as_ref());
            let mut model = Service::new(&def.name, &def.named_credential);
            for (action, action_def) in &def.actions {
                let path = root.key("actions").key(action);
                if !is_api_name(action) {
                    self.diagnostics.push(
                        self.project
                            .at_key(id, &path, codes::HP007, format!("`{action}` is not a valid action API name"))
                            .hint("use letters, digits and underscores (`Send_SMS`); put the display name in `label`"),
                    );
                    continue;
                }
                let Some(method) = Method::parse(&action_def.method) else {
                    self.diagnostics.push(
                        self.project
                            .at_value(
                                id,
                                &path.key("method"),
                                None,
                                codes::HP020,
                                format!("unknown method `{}`", action_def.method),
                            )
                            .hint("use GET, POST, PUT, PATCH or DELETE"),
                    );
                    continue;
                };
                let request =
                    self.sample(id, &path.key("sample_request"), action_def.sample_request.as_ref());
                let response =
                    self.sample(id, &path.key("sample_response"), action_def.sample_response.as_ref());
                let (Ok(request), Ok(response)) = (request, response) else { continue };
                let label = action_def.label.clone().unwrap_or_else(|| action.replace('_', " "));
                if let Err(error) = infer_callout_action(
                    &mut model,
                    action,
                    &label,
                    method,
                    &action_def.path,
                    request.as_ref(),
                    response.as_ref(),
                ) {
                    self.diagnostics.push(self.project.at_value(
                        id,
                        &path.key("path"),
                        None,
                        codes::HP021,
                        error.to_string(),
                    ));
                }
            }
            services.insert(
                def.name.clone(),
                Located { def: ServiceEntry { model, provider, spec: None }, source: id },
            );
        }
        services
    }

    /// A service's provider rules; an unknown named credential is reported.
    fn service_provider(
        &mut self,
        id: SourceId,
        named_credential: &str,
        provider: Option<&String>,
    ) -> Provider {
        let named = self.project.named_credentials.get(named_credential);
        if named.is_none() {
            let names = self.project.named_credentials.keys().map(String::as_str);
            self.diagnostics.push(
                self.project
                    .at_value(
                        id,
                        &YamlPath::root().key("named_credential"),
                        None,
                        codes::HP016,
                        format!("unknown named credential `{named_credential}`"),
                    )
                    .maybe_hint(did_you_mean(named_credential, names)),
            );
        }
        self.provider(id, named, provider)
    }

    fn provider(
        &mut self,
        id: SourceId,
        named: Option<&Located<NamedCredentialDef>>,
        name: Option<&String>,
    ) -> Provider {
        match name {
            Some(name) => Provider::from_name(name).unwrap_or_else(|| {
                self.diagnostics.push(
                    self.project
                        .at_value(
                            id,
                            &YamlPath::root().key("provider"),
                            None,
                            codes::HP019,
                            format!("unknown provider `{name}`"),
                        )
                        .hint(did_you_mean(name, Provider::names()).unwrap_or_else(|| {
                            format!("use one of {}", Provider::names().collect::<Vec<_>>().join(", "))
                        })),
                );
                Provider::generic()
            }),
            None => named
                .and_then(|n| url_host(&n.def.url).ok())
                .map_or_else(Provider::generic, |h| Provider::detect(&h)),
        }
    }

    /// Imports an external service's OpenAPI file; its problems point at the service file.
    fn external_service(
        &mut self,
        id: SourceId,
        def: &ExternalServiceDef,
        spec_files: &IndexMap<PathBuf, String>,
    ) -> Option<ServiceEntry> {
        let root = YamlPath::root();
        let provider = self.service_provider(id, &def.named_credential, def.provider.as_ref());
        let service_dir = self.project.source(id).path.parent().map(Path::to_path_buf).unwrap_or_default();
        let spec_path = normalize_relative(&service_dir.join(&def.spec));
        let Some(text) = spec_files.get(&spec_path) else {
            let known: Vec<String> = spec_files.keys().map(|p| p.display().to_string()).collect();
            let hint = if known.is_empty() {
                format!("put the OpenAPI file in services/ (e.g. services/{}.json)", def.name)
            } else {
                format!("spec files found: {}", known.join(", "))
            };
            self.diagnostics.push(
                self.project
                    .at_value(
                        id,
                        &root.key("spec"),
                        None,
                        codes::HP024,
                        format!("spec file `{}` not found", spec_path.display()),
                    )
                    .hint(hint),
            );
            return None;
        };
        let options =
            herald_openapi::ImportOptions { operations: def.operations.clone(), server: def.server.clone() };
        match herald_openapi::import(text, &def.name, &def.named_credential, &options) {
            Ok(model) => {
                self.compare_with_published(&spec_path, text, provider, def.operations.as_deref());
                Some(ServiceEntry { model, provider, spec: Some(spec_path) })
            }
            Err(error) => {
                self.diagnostics.push(self.import_diagnostic(id, &spec_path, text, &error));
                None
            }
        }
    }

    /// Warns where an imported spec contradicts the one its provider publishes (HW003-HW005), at the
    /// place in the imported file, naming what the provider documents.
    fn compare_with_published(
        &mut self,
        spec_path: &Path,
        text: &str,
        provider: Provider,
        operations: Option<&[String]>,
    ) {
        let mut locator = None;
        for published in provider.published_specs() {
            for found in herald_openapi::compare(text, published.text, operations) {
                let locator = locator.get_or_insert_with(|| Locator::index(text, Limits::SPEC).ok());
                let position = locator.as_ref().map(|l| l.pointer(&found.pointer)).unwrap_or_default();
                let code = match found.kind {
                    herald_openapi::ContradictionKind::Enum => codes::HW003,
                    herald_openapi::ContradictionKind::Required => codes::HW004,
                    herald_openapi::ContradictionKind::Type => codes::HW005,
                };
                let label = provider.label();
                self.warnings.push(
                    Diagnostic::warning(
                        code,
                        spec_path,
                        format!(
                            "{} (operation {}; {label}'s published spec {})",
                            found.message, found.operation, published.file
                        ),
                    )
                    .at(position)
                    .hint(format!(
                        "{label} documents {}; correct this spec: herald validates requests against it, {label} against its own",
                        found.documented
                    )),
                );
            }
        }
    }

    /// An import error points into the spec when it names a place there (a JSON pointer, or a line
    /// found before parsing), else at the service file's key it concerns.
    fn import_diagnostic(
        &self,
        id: SourceId,
        spec_path: &Path,
        text: &str,
        error: &herald_openapi::ImportError,
    ) -> Diagnostic {
        use herald_openapi::ImportError;
        let code = match error {
            ImportError::ForbiddenHeader { .. } => codes::HP034,
            _ => codes::HP025,
        };
        let service_file = self.project.source(id).path.display().to_string();
        let in_spec = match (error.pointer(), error.position()) {
            (_, Some((line, column))) => Some(Position { line, column }),
            (Some(pointer), None) => Locator::index(text, Limits::SPEC).ok().map(|l| l.pointer(pointer)),
            (None, None) => None,
        };
        if let Some(position) = in_spec {
            let diagnostic = Diagnostic::new(code, spec_path, error.to_string()).at(position);
            return match error {
                ImportError::ForbiddenHeader { reason, .. } => diagnostic.hint(header_fix(reason)),
                _ => diagnostic.hint(format!("the spec of the external service in {service_file}")),
            };
        }
        let root = YamlPath::root();
        let path = match error {
            ImportError::UnknownOperation { .. } => root.key("operations"),
            ImportError::UnknownServer { .. } => root.key("server"),
            _ => root.key("spec"),
        };
        self.project.at_value(id, &path, None, code, format!("{}: {error}", spec_path.display()))
    }

    /// A sample is a YAML mapping, or a JSON text pasted as a string (as the Flow UI takes it).
    fn sample(
        &mut self,
        id: SourceId,
        path: &YamlPath,
        sample: Option<&serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, ()> {
        match sample {
            None => Ok(None),
            Some(serde_json::Value::String(text)) => match serde_json::from_str(text) {
                Ok(value) => Ok(Some(value)),
                Err(error) => {
                    self.diagnostics.push(
                        self.project
                            .at_value(
                                id,
                                path,
                                None,
                                codes::HP022,
                                format!("the sample is not valid JSON: {error}"),
                            )
                            .hint("paste the JSON exactly, or write the sample as a YAML mapping"),
                    );
                    Err(())
                }
            },
            Some(value) => Ok(Some(value.clone())),
        }
    }
}

/// The host of an absolute http(s) URL, or why the URL is not usable as a named credential's base.
pub fn url_host(url: &str) -> Result<String, &'static str> {
    let (rest, plain) = match url.strip_prefix("https://") {
        Some(rest) => (rest, false),
        None => (url.strip_prefix("http://").ok_or("must start with https://")?, true),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not carry a user name or password (credentials belong in the external credential)");
    }
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(h, port)| if port.chars().all(|c| c.is_ascii_digit()) { h } else { authority });
    if host.is_empty() || !host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
        return Err("has no valid host name");
    }
    // Secrets travel in these requests: plain HTTP only to this machine.
    if plain && !matches!(host.to_ascii_lowercase().as_str(), "localhost" | "127.0.0.1") {
        return Err(
            "uses plain http://; callouts carry secrets, so use https:// (http:// is allowed only for localhost)",
        );
    }
    Ok(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_names_follow_salesforce_rules() {
        assert!(is_api_name("Lead_Welcome_SMS"));
        assert!(!is_api_name("1Lead"));
        assert!(!is_api_name("Lead__Welcome"));
        assert!(!is_api_name("Lead_"));
        assert!(!is_api_name("Send SMS"));
    }

    #[test]
    fn url_hosts_are_checked() {
        assert_eq!(url_host("https://apig.kixie.com").unwrap(), "apig.kixie.com");
        assert_eq!(url_host("https://Sms.US.8x8.com:443/api").unwrap(), "sms.us.8x8.com");
        assert!(url_host("apig.kixie.com").is_err());
        assert!(url_host("http://apig.kixie.com").unwrap_err().contains("use https://"));
        assert_eq!(url_host("http://127.0.0.1:9000").unwrap(), "127.0.0.1");
        assert!(url_host("https://user:pw@apig.kixie.com").is_err());
        assert!(url_host("https://").is_err());
    }

    #[test]
    fn serde_hints_suggest_the_closest_key() {
        assert_eq!(
            serde_hint("elements.a: unknown field `actoin`, expected one of `label`, `action`, `inputs`")
                .as_deref(),
            Some("did you mean `action`?")
        );
    }
}

#[cfg(test)]
mod durability_tests {
    use super::*;

    fn config(toml: &str) -> (Option<Project>, Diagnostics) {
        load_files(PathBuf::from("/p"), vec![(PathBuf::from("herald.toml"), toml.to_string())])
    }

    #[test]
    fn commits_survive_a_crash_by_default_and_a_power_loss_when_asked() {
        let (project, _) = config("");
        assert_eq!(project.unwrap().config.database.synchronous, Synchronous::Normal);
        let (project, diagnostics) = config("[database]\nsynchronous = \"full\"\n");
        assert!(diagnostics.is_empty(), "{diagnostics}");
        assert_eq!(project.unwrap().config.database.synchronous, Synchronous::Full);
        let (_, diagnostics) = config("[database]\nsynchronous = \"fsync\"\n");
        assert!(!diagnostics.is_empty(), "an unknown value is refused");
        let shown = diagnostics.to_string();
        assert!(shown.contains("normal") && shown.contains("full"), "the allowed values are named: {shown}");
    }

    #[test]
    fn a_node_opens_ten_database_connections_unless_told_otherwise() {
        let (project, _) = config("");
        assert_eq!(project.unwrap().config.database.connections, 10);
        let (project, diagnostics) = config("[database]\nconnections = 4\n");
        assert!(diagnostics.is_empty(), "{diagnostics}");
        assert_eq!(project.unwrap().config.database.connections, 4);
        let (_, diagnostics) = config("[database]\nconnections = \"many\"\n");
        assert!(
            diagnostics.to_string().contains("herald.toml:2:15"),
            "the value is pointed at: {diagnostics}"
        );
    }
}

/// Whether a database location is a PostgreSQL URL (else it is a SQLite file).
pub fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}
