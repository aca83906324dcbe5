//! External Services: an OpenAPI document (3.0, 3.1 or Swagger 2.0; JSON or YAML) imported into the
//! [`Service`] model with Salesforce's generated type names.
//!
//! Every schema is named after the place in the document where it is *defined* (after following
//! `$ref`), so a schema gets one name however many operations use it:
//! - `#/components/schemas/SmsRequest` -> `ExternalService__<Registration>_SmsRequest`;
//! - a nested inline object keeps its path of property names: `content.template.components[]` in schema
//!   `content` -> `..._content_template_components` (array items add no part);
//! - an inline request body -> `..._<operation>_IN_body` (Swagger 2.0: `_IN_<parameter name>`), an inline
//!   response -> `..._<operation>_OUT_<status>`;
//! - each part is escaped by [`sanitize_identifier`] (`single-message-request` ->
//!   `singlex2dmessagex2drequest`, `_` -> `x5f`); a status stays as written (`200`, `2XX`).

use crate::limits::{self, Limits, MAX_SPEC_BYTES, ShapeError};
use crate::naming::{api_name, registration_type_name, sanitize_identifier};
use crate::{
    Body, BodyEncoding, Constraints, Method, ObjectType, Operation, ParamLocation, Parameter, Property,
    Response, Server, Service, Shape, ValidatorCache,
};
use indexmap::IndexMap;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// What to take from a spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// The operations to import, by `operationId` (or by the action name herald derived from it);
    /// `None` imports every operation.
    pub operations: Option<Vec<String>>,
    /// One of the spec's server URLs (a region), recorded as [`Service::server`].
    pub server: Option<String>,
}

/// Why a spec cannot be imported. Each names the place in the spec (a JSON pointer) and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("the spec is neither valid JSON nor valid YAML: {message}; fix the syntax at that position")]
    Parse { message: String },
    #[error(
        "the spec is {size} bytes, over herald's limit of {max} bytes for a spec; import a copy that keeps only the operations you use"
    )]
    TooLarge { size: usize, max: usize },
    #[error("line {line}, column {column}: the spec {problem}; {fix}")]
    Limit { line: usize, column: usize, problem: String, fix: &'static str },
    #[error(
        "`{at}`: header parameter `{name}` cannot come from a spec: {reason}; remove the parameter from the spec"
    )]
    ForbiddenHeader { at: String, name: String, reason: &'static str },
    #[error(
        "the spec is a JSON {found}, not an object; an OpenAPI document is an object with `openapi` and `paths`"
    )]
    NotAnObject { found: &'static str },
    #[error(
        "`#/{key}`: version `{found}` is not supported; herald imports OpenAPI 3.0 and 3.1 (`openapi: 3.0.3`) and Swagger 2.0 (`swagger: \"2.0\"`)"
    )]
    UnsupportedVersion { key: &'static str, found: String },
    #[error(
        "registration name `{name}` is not an API name ({reason}); use letters, digits and single underscores, starting with a letter, e.g. CPaaSSMS"
    )]
    InvalidRegistration { name: String, reason: &'static str },
    #[error("`{at}`: {message}; {fix}")]
    Invalid { at: String, message: String, fix: String },
    #[error(
        "`{at}`: `$ref` `{reference}` points outside this file; herald never fetches other files or URLs: copy the schema under #/components/schemas and refer to it as #/components/schemas/NAME"
    )]
    ExternalRef { at: String, reference: String },
    #[error("`{at}`: `$ref` `{reference}` names nothing in this spec; point it at an existing schema{hint}")]
    UnresolvedRef { at: String, reference: String, hint: String },
    #[error("`{at}`: a chain of `$ref` loops or is longer than {max} hops; point the reference at a schema")]
    RefLoop { at: String, max: usize },
    #[error(
        "`{at}`: schemas nest deeper than {max} levels; split the schema into named schemas joined by $ref"
    )]
    TooDeep { at: String, max: usize },
    #[error(
        "the spec declares no operation under `#/paths`; add an operation (e.g. `post` with an operationId)"
    )]
    NoOperations,
    #[error("the spec has no operation `{id}`{suggestion}; its operations are: {available}")]
    UnknownOperation { id: String, suggestion: String, available: String },
    #[error(
        "server `{url}` is not declared in `#/servers`; pick one of: {available} (or leave the server out to use the named credential's URL)"
    )]
    UnknownServer { url: String, available: String },
}

impl ImportError {
    /// The JSON pointer of the place in the spec the error is about, when it has one.
    pub fn pointer(&self) -> Option<&str> {
        match self {
            ImportError::Invalid { at, .. }
            | ImportError::ExternalRef { at, .. }
            | ImportError::UnresolvedRef { at, .. }
            | ImportError::RefLoop { at, .. }
            | ImportError::TooDeep { at, .. }
            | ImportError::ForbiddenHeader { at, .. } => Some(at),
            _ => None,
        }
    }

    /// The line and column in the spec's text, for errors found before the spec was parsed.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ImportError::Limit { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

const MAX_DEPTH: usize = 64;
const MAX_REF_HOPS: usize = 32;
const METHODS: [(&str, Method); 5] = [
    ("get", Method::Get),
    ("put", Method::Put),
    ("post", Method::Post),
    ("delete", Method::Delete),
    ("patch", Method::Patch),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    Swagger2,
    OpenApi30,
    OpenApi31,
}

/// Imports `spec_text` as the External Service `registration`, called through `named_credential`.
///
/// Every chosen operation becomes an [`Operation`] named by its `operationId` when that id is usable in
/// a flow reference (letters, digits, `-` and `_`, e.g. `Send-Sms-Single`); otherwise every other
/// character becomes `_` (`send.sms v2` -> `send_sms_v2`), and an operation without an id is named
/// `<method>_<path>` (`post_api_v1_messages`). A name already taken gets `_2`, `_3`, ...
pub fn import(
    spec_text: &str,
    registration: &str,
    named_credential: &str,
    options: &ImportOptions,
) -> Result<Service, ImportError> {
    check_registration(registration)?;
    let doc = parse(spec_text)?;
    let Value::Object(root) = &doc else {
        return Err(ImportError::NotAnObject { found: json_kind(&doc) });
    };
    let version = version_of(root)?;
    let mut importer = Importer {
        doc: &doc,
        version,
        registration,
        op_names: HashMap::new(),
        types: IndexMap::new(),
        type_by_pointer: HashMap::new(),
        taken_names: HashSet::new(),
    };
    let found = importer.list_operations()?;
    if found.is_empty() {
        return Err(ImportError::NoOperations);
    }
    let chosen: Vec<&FoundOperation> = match &options.operations {
        None => found.iter().collect(),
        Some(wanted) => {
            for id in wanted {
                if !found.iter().any(|f| f.matches(id)) {
                    return Err(unknown_operation(id, &found));
                }
            }
            found.iter().filter(|f| wanted.iter().any(|id| f.matches(id))).collect()
        }
    };

    let mut service = Service::new(registration, named_credential);
    service.servers = servers_of(root, version);
    if service.servers.is_empty()
        && let Some(first) = chosen.first()
    {
        service.servers = path_servers(&doc, &first.path);
    }
    if let Some(url) = &options.server {
        let wanted = url.trim_end_matches('/');
        let Some(server) = service.servers.iter().find(|s| s.url.trim_end_matches('/') == wanted) else {
            let available = first_few(service.servers.iter().map(|s| s.url.as_str()));
            return Err(ImportError::UnknownServer {
                url: url.clone(),
                available: if available.is_empty() { "(the spec declares none)".into() } else { available },
            });
        };
        service.server = Some(server.url.clone());
    }
    for operation in chosen {
        let built = importer.operation(operation)?;
        service.operations.insert(built.name.clone(), built);
    }
    service.types = importer.types;
    Ok(service)
}

fn check_registration(name: &str) -> Result<(), ImportError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("it must start with a letter")
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Some("it may hold only letters, digits and underscores")
    } else if name.contains("__") {
        Some("it may not contain two underscores in a row")
    } else if name.ends_with('_') {
        Some("it may not end with an underscore")
    } else if name.len() > 80 {
        Some("it is longer than 80 characters")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ImportError::InvalidRegistration { name: name.into(), reason }),
        None => Ok(()),
    }
}

/// Parses JSON or YAML, after checking its size and shape so that neither parser is handed a document
/// that would take minutes or gigabytes (see [`crate::limits`]).
pub(crate) fn parse(text: &str) -> Result<Value, ImportError> {
    if text.len() > MAX_SPEC_BYTES {
        return Err(ImportError::TooLarge { size: text.len(), max: MAX_SPEC_BYTES });
    }
    let text = text.trim_start_matches('\u{feff}');
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        limits::check_json(text, Limits::SPEC).map_err(limit_error)?;
        return serde_json::from_str::<Value>(trimmed)
            .map_err(|json_error| ImportError::Parse { message: format!("JSON: {json_error}") });
    }
    // Anything else is YAML (a JSON scalar is YAML too, and is refused as not an object).
    limits::walk_yaml(text, Limits::SPEC, |_, _| {}).map_err(limit_error)?;
    yaml_serde::from_str::<Value>(text)
        .map_err(|yaml_error| ImportError::Parse { message: format!("YAML: {yaml_error}") })
}

fn limit_error(error: ShapeError) -> ImportError {
    let (line, column) = error.position();
    let fix = match &error {
        ShapeError::Syntax { message, .. } => {
            return ImportError::Parse { message: format!("YAML: {message} at line {line} column {column}") };
        }
        ShapeError::TooDeep { .. } => "split deep schemas into named schemas joined by $ref",
        ShapeError::TooManyNodes { .. } => "import a copy that keeps only the operations you use",
    };
    ImportError::Limit { line, column, problem: error.to_string().replacen("it ", "", 1), fix }
}

fn version_of(root: &Map<String, Value>) -> Result<Version, ImportError> {
    if let Some(found) = root.get("openapi") {
        let text = scalar_text(found);
        return if text.starts_with("3.0") {
            Ok(Version::OpenApi30)
        } else if text.starts_with("3.1") {
            Ok(Version::OpenApi31)
        } else {
            Err(ImportError::UnsupportedVersion { key: "openapi", found: text })
        };
    }
    if let Some(found) = root.get("swagger") {
        let text = scalar_text(found);
        return if text == "2.0" || text == "2" {
            Ok(Version::Swagger2)
        } else {
            Err(ImportError::UnsupportedVersion { key: "swagger", found: text })
        };
    }
    Err(ImportError::UnsupportedVersion { key: "openapi", found: "(missing)".into() })
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn servers_of(root: &Map<String, Value>, version: Version) -> Vec<Server> {
    if version == Version::Swagger2 {
        let Some(host) = root.get("host").and_then(Value::as_str) else { return Vec::new() };
        let base = root.get("basePath").and_then(Value::as_str).unwrap_or("");
        let schemes: Vec<&str> = root
            .get("schemes")
            .and_then(Value::as_array)
            .map(|s| s.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let scheme = if schemes.contains(&"https") || schemes.is_empty() { "https" } else { schemes[0] };
        return vec![Server { url: format!("{scheme}://{host}{base}"), description: None }];
    }
    server_list(root.get("servers"))
}

fn server_list(servers: Option<&Value>) -> Vec<Server> {
    let Some(Value::Array(servers)) = servers else { return Vec::new() };
    servers
        .iter()
        .filter_map(|server| {
            let mut url = server.get("url")?.as_str()?.to_string();
            if let Some(Value::Object(variables)) = server.get("variables") {
                for (name, variable) in variables {
                    if let Some(default) = variable.get("default") {
                        url = url.replace(&format!("{{{name}}}"), &scalar_text(default));
                    }
                }
            }
            let description = server.get("description").and_then(Value::as_str).map(str::to_string);
            Some(Server { url, description })
        })
        .collect()
}

fn path_servers(doc: &Value, path: &str) -> Vec<Server> {
    server_list(doc.get("paths").and_then(|p| p.get(path)).and_then(|item| item.get("servers")))
}

fn unknown_operation(id: &str, found: &[FoundOperation]) -> ImportError {
    let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    let best = found
        .iter()
        .flat_map(|f| [f.name.as_str()].into_iter().chain(f.operation_id.as_deref()))
        .map(|candidate| {
            (strsim::jaro_winkler(&id.to_ascii_lowercase(), &candidate.to_ascii_lowercase()), candidate)
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    ImportError::UnknownOperation {
        id: id.into(),
        suggestion: best.map(|(_, name)| format!("; did you mean `{name}`?")).unwrap_or_default(),
        available: first_few(names.iter().copied()),
    }
}

/// The first names of a list for an error message, and how many more there are: a spec with
/// thousands of operations must not make a message of thousands of names.
fn first_few<'a>(names: impl Iterator<Item = &'a str>) -> String {
    const SHOWN: usize = 20;
    let names: Vec<&str> = names.collect();
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(|n| n.chars().take(80).collect::<String>())
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------------------------------
// JSON pointers

fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn unescape_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

pub(crate) fn child(pointer: &str, token: &str) -> String {
    format!("{pointer}/{}", escape_token(token))
}

fn tokens(pointer: &str) -> Vec<String> {
    let rest = pointer.strip_prefix('#').unwrap_or(pointer);
    if rest.is_empty() {
        return Vec::new();
    }
    rest.trim_start_matches('/').split('/').map(unescape_token).collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|d| d as u8)
}

pub(crate) fn lookup<'v>(doc: &'v Value, pointer: &str) -> Option<&'v Value> {
    let mut node = doc;
    for token in tokens(pointer) {
        node = match node {
            Value::Object(map) => map.get(&token)?,
            Value::Array(items) => items.get(token.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// The canonical pointer (`#/a/b`, tokens escaped, no percent-encoding) that a local `$ref` names.
pub(crate) fn ref_target(reference: &str, at: &str) -> Result<String, ImportError> {
    let Some(fragment) = reference.strip_prefix('#') else {
        return Err(ImportError::ExternalRef { at: at.into(), reference: reference.into() });
    };
    let decoded = percent_decode(fragment);
    let mut pointer = String::from("#");
    if decoded.is_empty() {
        return Ok(pointer);
    }
    for token in decoded.trim_start_matches('/').split('/') {
        pointer.push('/');
        pointer.push_str(token);
    }
    Ok(pointer)
}

// ---------------------------------------------------------------------------------------------------
// Operations

struct FoundOperation {
    name: String,
    operation_id: Option<String>,
    path: String,
    method_key: &'static str,
    method: Method,
}

impl FoundOperation {
    fn matches(&self, id: &str) -> bool {
        self.name == id || self.operation_id.as_deref() == Some(id)
    }
}

/// The action name for an operationId: kept when flows can reference it as `Service.Name`.
fn action_name(operation_id: Option<&str>, method: &str, path: &str) -> String {
    let source = match operation_id {
        Some(id) if !id.trim().is_empty() => id.to_string(),
        _ => format!("{method}_{path}"),
    };
    let mut name = String::with_capacity(source.len());
    for c in source.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            name.push(c);
        } else if !name.ends_with('_') {
            name.push('_');
        }
    }
    let name = name.trim_matches('_').to_string();
    if name.is_empty() { format!("{method}_operation") } else { name }
}

struct Importer<'a> {
    doc: &'a Value,
    version: Version,
    registration: &'a str,
    /// (path, method) -> action name, for naming schemas defined inside an operation.
    op_names: HashMap<(String, String), String>,
    types: IndexMap<String, ObjectType>,
    type_by_pointer: HashMap<String, String>,
    taken_names: HashSet<String>,
}

impl<'a> Importer<'a> {
    fn list_operations(&mut self) -> Result<Vec<FoundOperation>, ImportError> {
        let Some(paths) = self.doc.get("paths") else { return Ok(Vec::new()) };
        let Value::Object(paths) = paths else {
            return Err(invalid(
                "#/paths",
                "`paths` is not an object",
                "write paths as a map from path to operations",
            ));
        };
        let mut found = Vec::new();
        let mut used = HashSet::new();
        for (path, item) in paths {
            if path.starts_with("x-") {
                continue;
            }
            let item_pointer = child("#/paths", path);
            let (_, item) = self.resolve(item_pointer.clone(), item)?;
            let Value::Object(item) = item else {
                return Err(invalid(
                    &item_pointer,
                    "a path item must be an object",
                    "map each method to an operation",
                ));
            };
            for (key, method) in METHODS {
                let Some(operation) = item.get(key) else { continue };
                let operation_id = operation.get("operationId").and_then(Value::as_str).map(str::to_string);
                let base = action_name(operation_id.as_deref(), key, path);
                let mut name = base.clone();
                let mut n = 2;
                while !used.insert(name.clone()) {
                    name = format!("{base}_{n}");
                    n += 1;
                }
                self.op_names.insert((path.clone(), key.to_string()), name.clone());
                found.push(FoundOperation {
                    name,
                    operation_id,
                    path: path.clone(),
                    method_key: key,
                    method,
                });
            }
        }
        Ok(found)
    }

    fn operation(&mut self, found: &FoundOperation) -> Result<Operation, ImportError> {
        let doc = self.doc;
        let path_pointer = child("#/paths", &found.path);
        let path_item = lookup(doc, &path_pointer).unwrap_or(&Value::Null);
        let (path_pointer, path_item) = self.resolve(path_pointer, path_item)?;
        let op_pointer = child(&path_pointer, found.method_key);
        let Some(op) = path_item.get(found.method_key) else {
            return Err(invalid(&op_pointer, "the operation vanished", "report this as a bug"));
        };
        let Value::Object(op_map) = op else {
            return Err(invalid(
                &op_pointer,
                "an operation must be an object",
                "write the operation as an object",
            ));
        };

        // Parameters: path-level first, then the operation's, which override by (name, in).
        let mut raw_parameters: Vec<(String, &'a Value)> = Vec::new();
        for (owner, list) in
            [(&path_pointer, path_item.get("parameters")), (&op_pointer, op.get("parameters"))]
        {
            let Some(list) = list else { continue };
            let list_pointer = child(owner, "parameters");
            let Value::Array(items) = list else {
                return Err(invalid(
                    &list_pointer,
                    "`parameters` is not a list",
                    "write parameters as a list",
                ));
            };
            for (index, item) in items.iter().enumerate() {
                raw_parameters.push((child(&list_pointer, &index.to_string()), item));
            }
        }
        let mut parameters: Vec<Parameter> = Vec::new();
        let mut body: Option<Body> = None;
        let mut request_schema = None;
        let mut form_fields: Vec<(String, &'a Value, bool)> = Vec::new();
        for (pointer, raw) in raw_parameters {
            let (pointer, parameter) = self.resolve(pointer, raw)?;
            let name = parameter.get("name").and_then(Value::as_str).ok_or_else(|| {
                invalid(&pointer, "a parameter has no `name`", "give every parameter a name")
            })?;
            let location = parameter.get("in").and_then(Value::as_str).ok_or_else(|| {
                invalid(&pointer, "a parameter has no `in`", "set `in` to path, query or header")
            })?;
            let required =
                location == "path" || parameter.get("required").and_then(Value::as_bool) == Some(true);
            let location = match location {
                "path" => ParamLocation::Path,
                "query" => ParamLocation::Query,
                "header" => {
                    if let Some(reason) = crate::header_refusal(name) {
                        return Err(ImportError::ForbiddenHeader {
                            at: child(&pointer, "name"),
                            name: name.chars().take(80).collect(),
                            reason,
                        });
                    }
                    ParamLocation::Header
                }
                // Cookies are not sent by callouts (Salesforce does not support them either).
                "cookie" => continue,
                "body" if self.version == Version::Swagger2 => {
                    let schema_pointer = child(&pointer, "schema");
                    let schema = parameter.get("schema").unwrap_or(&Value::Null);
                    let shape = if schema.is_null() {
                        Shape::Any
                    } else {
                        self.shape_of(&schema_pointer, schema, 0)?
                    };
                    if !schema.is_null() {
                        request_schema = Some(self.build_schema(&schema_pointer, schema)?);
                    }
                    let content_type = swagger_consumes(doc, op).unwrap_or_else(|| "application/json".into());
                    body = Some(Body {
                        name: name.to_string(),
                        shape,
                        required,
                        encoding: encoding_of(&content_type),
                        content_type,
                    });
                    continue;
                }
                "formData" if self.version == Version::Swagger2 => {
                    form_fields.push((name.to_string(), parameter, required));
                    continue;
                }
                other => {
                    return Err(invalid(
                        &child(&pointer, "in"),
                        &format!("parameter location `{other}` is unknown"),
                        "use path, query, header or cookie",
                    ));
                }
            };
            let (shape, constraints, description) = self.parameter_schema(&pointer, parameter)?;
            let parameter = Parameter {
                name: name.to_string(),
                location,
                shape,
                required,
                description: description.or_else(|| text_of(parameter, "description")),
                constraints,
            };
            match parameters.iter_mut().find(|p| p.name == parameter.name && p.location == parameter.location)
            {
                Some(existing) => *existing = parameter,
                None => parameters.push(parameter),
            }
        }
        if !form_fields.is_empty() {
            let (form_body, schema) = self.swagger_form_body(found, &form_fields, op)?;
            body = Some(form_body);
            request_schema = Some(schema);
        }

        if let Some(raw_body) = op.get("requestBody") {
            let (body_pointer, request_body) = self.resolve(child(&op_pointer, "requestBody"), raw_body)?;
            let required = request_body.get("required").and_then(Value::as_bool).unwrap_or(false);
            if let Some((content_type, schema_pointer, schema)) = pick_media(&body_pointer, request_body) {
                let shape = match schema {
                    Some(schema) => {
                        request_schema = Some(self.build_schema(&schema_pointer, schema)?);
                        self.shape_of(&schema_pointer, schema, 0)?
                    }
                    None => Shape::Any,
                };
                body = Some(Body {
                    name: body_name(request_body),
                    shape,
                    required,
                    encoding: encoding_of(&content_type),
                    content_type,
                });
            }
        }

        let mut responses = Vec::new();
        if let Some(declared) = op.get("responses") {
            let responses_pointer = child(&op_pointer, "responses");
            let Value::Object(declared) = declared else {
                return Err(invalid(
                    &responses_pointer,
                    "`responses` is not an object",
                    "map statuses to responses",
                ));
            };
            for (status, raw) in declared {
                if status.starts_with("x-") {
                    continue;
                }
                let (pointer, response) = self.resolve(child(&responses_pointer, status), raw)?;
                let shape = if self.version == Version::Swagger2 {
                    match response.get("schema") {
                        Some(schema) => Some(self.shape_of(&child(&pointer, "schema"), schema, 0)?),
                        None => None,
                    }
                } else {
                    match pick_media(&pointer, response) {
                        Some((_, schema_pointer, Some(schema))) => {
                            Some(self.shape_of(&schema_pointer, schema, 0)?)
                        }
                        _ => None,
                    }
                };
                let status = if status.eq_ignore_ascii_case("default") {
                    "default".into()
                } else {
                    status.to_ascii_uppercase()
                };
                responses.push(Response { status, shape, description: text_of(response, "description") });
            }
        }

        Ok(Operation {
            name: found.name.clone(),
            label: text_of(op, "summary").unwrap_or_else(|| found.name.clone()),
            method: found.method,
            path: found.path.clone(),
            parameters,
            body,
            responses,
            operation_id: found.operation_id.clone(),
            description: op_map.get("description").and_then(Value::as_str).map(str::to_string),
            request_schema,
            validator: ValidatorCache::default(),
        })
    }

    fn parameter_schema(
        &mut self,
        pointer: &str,
        parameter: &'a Value,
    ) -> Result<(Shape, Constraints, Option<String>), ImportError> {
        if self.version == Version::Swagger2 {
            let shape = self.shape_of(pointer, parameter, 0)?;
            let (description, constraints) = self.constraints_of(pointer, parameter)?;
            return Ok((shape, constraints, description));
        }
        let (schema_pointer, schema) = if let Some(schema) = parameter.get("schema") {
            (child(pointer, "schema"), schema)
        } else if let Some((_, schema_pointer, Some(schema))) = pick_media(pointer, parameter) {
            (schema_pointer, schema)
        } else {
            return Ok((Shape::Text, Constraints::default(), None));
        };
        let shape = self.shape_of(&schema_pointer, schema, 0)?;
        let (description, constraints) = self.constraints_of(&schema_pointer, schema)?;
        Ok((shape, constraints, description))
    }

    fn swagger_form_body(
        &mut self,
        found: &FoundOperation,
        fields: &[(String, &'a Value, bool)],
        op: &'a Value,
    ) -> Result<(Body, Value), ImportError> {
        let type_name = self.claim(&format!("form:{}:{}", found.path, found.method_key), || {
            vec![sanitize_identifier(&found.name), "IN".into(), "body".into()]
        });
        let mut properties = IndexMap::new();
        let mut schema_properties = Map::new();
        let mut required = Vec::new();
        for (name, parameter, is_required) in fields {
            let pointer = format!("form:{name}");
            let shape = match parameter.get("type").and_then(Value::as_str) {
                Some("file") => Shape::Any,
                _ => self.shape_of(&pointer, parameter, 1)?,
            };
            let (description, constraints) = self.constraints_of(&pointer, parameter)?;
            properties.insert(
                name.clone(),
                Property {
                    shape,
                    required: *is_required,
                    api_name: api_name(name),
                    description,
                    constraints,
                },
            );
            let mut field_schema = Map::new();
            for key in
                ["type", "format", "enum", "pattern", "maxLength", "minLength", "minimum", "maximum", "items"]
            {
                if let Some(value) = parameter.get(key)
                    && !(key == "type" && value == "file")
                {
                    field_schema.insert(key.into(), value.clone());
                }
            }
            schema_properties.insert(name.clone(), Value::Object(field_schema));
            if *is_required {
                required.push(Value::String(name.clone()));
            }
        }
        self.types.insert(type_name.clone(), ObjectType::new(type_name.clone(), properties));
        let content_type =
            swagger_consumes(self.doc, op).unwrap_or_else(|| "application/x-www-form-urlencoded".into());
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": schema_properties,
            "required": required,
        });
        let body = Body {
            name: "body".into(),
            shape: Shape::Object { type_name },
            required: !required.is_empty(),
            encoding: encoding_of(&content_type),
            content_type,
        };
        Ok((body, schema))
    }

    // -----------------------------------------------------------------------------------------------
    // Schemas -> shapes

    fn resolve(&self, mut pointer: String, mut node: &'a Value) -> Result<(String, &'a Value), ImportError> {
        for _ in 0..MAX_REF_HOPS {
            let Some(reference) = node.as_object().and_then(|m| m.get("$ref")) else {
                return Ok((pointer, node));
            };
            let at = child(&pointer, "$ref");
            let Some(reference) = reference.as_str() else {
                return Err(invalid(
                    &at,
                    "`$ref` is not a string",
                    "write the reference as \"#/components/schemas/NAME\"",
                ));
            };
            let target = ref_target(reference, &at)?;
            node = lookup(self.doc, &target).ok_or_else(|| ImportError::UnresolvedRef {
                at: at.clone(),
                reference: reference.into(),
                hint: self.ref_hint(&target),
            })?;
            pointer = target;
        }
        Err(ImportError::RefLoop { at: pointer, max: MAX_REF_HOPS })
    }

    fn ref_hint(&self, target: &str) -> String {
        let parts = tokens(target);
        let Some((last, parent)) = parts.split_last() else { return String::new() };
        let parent_pointer = parent.iter().fold(String::from("#"), |p, t| child(&p, t));
        let Some(Value::Object(siblings)) = lookup(self.doc, &parent_pointer) else { return String::new() };
        siblings
            .keys()
            .map(|k| (strsim::jaro_winkler(&last.to_ascii_lowercase(), &k.to_ascii_lowercase()), k))
            .filter(|(score, _)| *score >= 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| format!(" (did you mean `{}`?)", child(&parent_pointer, k)))
            .unwrap_or_default()
    }

    fn shape_of(&mut self, pointer: &str, raw: &'a Value, depth: usize) -> Result<Shape, ImportError> {
        if depth > MAX_DEPTH {
            return Err(ImportError::TooDeep { at: pointer.into(), max: MAX_DEPTH });
        }
        let (pointer, schema) = self.resolve(pointer.to_string(), raw)?;
        let map = match schema {
            Value::Bool(_) => return Ok(Shape::Any),
            Value::Object(map) => map,
            other => {
                return Err(invalid(
                    &pointer,
                    &format!("a schema must be an object, not a {}", json_kind(other)),
                    "write the schema as an object such as {\"type\": \"string\"}",
                ));
            }
        };
        if let Some(all) = map.get("allOf") {
            let members = array_of(&pointer, "allOf", all)?;
            let own_properties =
                map.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty());
            if members.len() == 1 && !own_properties {
                return self.shape_of(&child(&child(&pointer, "allOf"), "0"), &members[0], depth + 1);
            }
            let mut object_like = own_properties;
            for (index, member) in members.iter().enumerate() {
                let member_pointer = child(&child(&pointer, "allOf"), &index.to_string());
                let (_, resolved) = self.resolve(member_pointer, member)?;
                object_like |= is_object_like(resolved);
            }
            if object_like {
                return self.object_type(&pointer, schema, depth);
            }
            return match members.first() {
                Some(first) => self.shape_of(&child(&child(&pointer, "allOf"), "0"), first, depth + 1),
                None => Ok(Shape::Any),
            };
        }
        for keyword in ["oneOf", "anyOf"] {
            let Some(alternatives) = map.get(keyword) else { continue };
            let members = array_of(&pointer, keyword, alternatives)?;
            let mut all_objects = !members.is_empty();
            let mut shapes = Vec::new();
            for (index, member) in members.iter().enumerate() {
                let member_pointer = child(&child(&pointer, keyword), &index.to_string());
                let (_, resolved) = self.resolve(member_pointer.clone(), member)?;
                if resolved.get("type").and_then(Value::as_str) == Some("null") {
                    continue;
                }
                all_objects &= is_object_like(resolved);
                if !all_objects {
                    shapes.push(self.shape_of(&member_pointer, member, depth + 1)?);
                }
            }
            if all_objects || map.get("properties").is_some() {
                return self.object_type(&pointer, schema, depth);
            }
            let first = shapes.first().cloned().unwrap_or(Shape::Any);
            return Ok(if shapes.iter().all(|s| *s == first) { first } else { Shape::Any });
        }
        Ok(match schema_type(map).as_deref() {
            Some("string") => Shape::Text,
            Some("integer") => Shape::Integer,
            Some("number") => Shape::Number,
            Some("boolean") => Shape::Boolean,
            Some("array") => match map.get("items") {
                Some(Value::Array(tuple)) => match tuple.first() {
                    Some(first) => Shape::List {
                        item: Box::new(self.shape_of(
                            &child(&child(&pointer, "items"), "0"),
                            first,
                            depth + 1,
                        )?),
                    },
                    None => Shape::List { item: Box::new(Shape::Any) },
                },
                Some(items) => Shape::List {
                    item: Box::new(self.shape_of(&child(&pointer, "items"), items, depth + 1)?),
                },
                None => Shape::List { item: Box::new(Shape::Any) },
            },
            Some("object") => {
                let has_properties =
                    map.get("properties").and_then(Value::as_object).is_some_and(|p| !p.is_empty());
                if has_properties {
                    self.object_type(&pointer, schema, depth)?
                } else {
                    Shape::Map {
                        value: Box::new(self.additional_shape(&pointer, map, depth)?.unwrap_or(Shape::Any)),
                    }
                }
            }
            Some("null") | Some("file") | None => Shape::Any,
            Some(other) => {
                return Err(invalid(
                    &child(&pointer, "type"),
                    &format!("type `{other}` is not a JSON Schema type"),
                    "use string, integer, number, boolean, array or object",
                ));
            }
        })
    }

    fn additional_shape(
        &mut self,
        pointer: &str,
        map: &'a Map<String, Value>,
        depth: usize,
    ) -> Result<Option<Shape>, ImportError> {
        match map.get("additionalProperties") {
            None | Some(Value::Bool(false)) => Ok(None),
            Some(Value::Bool(true)) => Ok(Some(Shape::Any)),
            Some(schema) => {
                Ok(Some(self.shape_of(&child(pointer, "additionalProperties"), schema, depth + 1)?))
            }
        }
    }

    /// The generated name for the schema defined at `pointer`, claimed once.
    fn claim(&mut self, pointer: &str, parts: impl FnOnce() -> Vec<String>) -> String {
        if let Some(existing) = self.type_by_pointer.get(pointer) {
            return existing.clone();
        }
        let parts = parts();
        let part_refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        let base = registration_type_name(self.registration, &part_refs);
        let mut name = base.clone();
        let mut n = 2;
        while self.taken_names.contains(&name) {
            name = format!("{base}_{n}");
            n += 1;
        }
        self.taken_names.insert(name.clone());
        self.type_by_pointer.insert(pointer.to_string(), name.clone());
        name
    }

    fn object_type(&mut self, pointer: &str, schema: &'a Value, depth: usize) -> Result<Shape, ImportError> {
        if let Some(existing) = self.type_by_pointer.get(pointer) {
            return Ok(Shape::Object { type_name: existing.clone() });
        }
        let parts = self.name_parts(pointer);
        let type_name = self.claim(pointer, || parts);
        // A placeholder first, so that a schema that contains itself ends instead of recursing.
        self.types.insert(type_name.clone(), ObjectType::new(type_name.clone(), IndexMap::new()));
        let mut collected = Collected::default();
        self.collect(pointer, schema, depth, &mut collected, true)?;
        for (name, property) in collected.properties.iter_mut() {
            property.required = collected.required.contains(name);
        }
        let object = ObjectType {
            name: type_name.clone(),
            properties: collected.properties,
            description: text_of(schema, "description"),
            alternatives: collected.alternatives,
            additional_properties: collected.additional,
        };
        self.types.insert(type_name.clone(), object);
        Ok(Shape::Object { type_name })
    }

    /// Gathers the properties of an object schema, merging `allOf` members and the union of
    /// `oneOf`/`anyOf` alternatives (whose own `required` lists do not apply to the union).
    fn collect(
        &mut self,
        pointer: &str,
        schema: &'a Value,
        depth: usize,
        into: &mut Collected,
        keep_required: bool,
    ) -> Result<(), ImportError> {
        if depth > MAX_DEPTH {
            return Err(ImportError::TooDeep { at: pointer.into(), max: MAX_DEPTH });
        }
        let (pointer, schema) = self.resolve(pointer.to_string(), schema)?;
        let Value::Object(map) = schema else { return Ok(()) };
        if let Some(all) = map.get("allOf") {
            for (index, member) in array_of(&pointer, "allOf", all)?.iter().enumerate() {
                let member_pointer = child(&child(&pointer, "allOf"), &index.to_string());
                self.collect(&member_pointer, member, depth + 1, into, keep_required)?;
            }
        }
        for keyword in ["oneOf", "anyOf"] {
            let Some(alternatives) = map.get(keyword) else { continue };
            for (index, member) in array_of(&pointer, keyword, alternatives)?.iter().enumerate() {
                let member_pointer = child(&child(&pointer, keyword), &index.to_string());
                let (resolved_pointer, resolved) = self.resolve(member_pointer.clone(), member)?;
                if resolved.get("type").and_then(Value::as_str) == Some("null") {
                    continue;
                }
                let label = if is_object_like(resolved) && resolved_pointer != member_pointer {
                    self.shape_of(&member_pointer, member, depth + 1)?.describe()
                } else if is_object_like(resolved) {
                    format!("{keyword} #{index}")
                } else {
                    self.shape_of(&member_pointer, member, depth + 1)?.describe()
                };
                into.alternatives.push(label);
                self.collect(&member_pointer, member, depth + 1, into, false)?;
            }
        }
        if let Some(properties) = map.get("properties") {
            let properties_pointer = child(&pointer, "properties");
            let Value::Object(properties) = properties else {
                return Err(invalid(
                    &properties_pointer,
                    "`properties` is not an object",
                    "map property names to schemas",
                ));
            };
            for (name, property_schema) in properties {
                let property_pointer = child(&properties_pointer, name);
                let shape = self.shape_of(&property_pointer, property_schema, depth + 1)?;
                let (description, constraints) = self.constraints_of(&property_pointer, property_schema)?;
                into.properties.insert(
                    name.clone(),
                    Property { shape, required: false, api_name: api_name(name), description, constraints },
                );
            }
        }
        if keep_required && let Some(Value::Array(required)) = map.get("required") {
            into.required.extend(required.iter().filter_map(Value::as_str).map(str::to_string));
        }
        if let Some(shape) = self.additional_shape(&pointer, map, depth)? {
            into.additional = Some(shape);
        }
        Ok(())
    }

    /// The description and constraints of a schema, looking through `$ref` and a single-member `allOf`
    /// (the schema's own keywords win).
    fn constraints_of(
        &self,
        pointer: &str,
        raw: &'a Value,
    ) -> Result<(Option<String>, Constraints), ImportError> {
        let mut description = text_of(raw, "description");
        let mut constraints = Constraints::default();
        let mut node_pointer = pointer.to_string();
        let mut node = raw;
        for _ in 0..8 {
            let (resolved_pointer, resolved) = self.resolve(node_pointer.clone(), node)?;
            let Value::Object(map) = resolved else { break };
            if description.is_none() {
                description = text_of(resolved, "description");
            }
            fill_constraints(&mut constraints, map);
            match map.get("allOf").and_then(Value::as_array) {
                Some(members) if members.len() == 1 => {
                    node_pointer = child(&child(&resolved_pointer, "allOf"), "0");
                    node = &members[0];
                }
                _ => break,
            }
        }
        Ok((description, constraints))
    }

    /// Salesforce-style name parts for the schema defined at `pointer`.
    fn name_parts(&self, pointer: &str) -> Vec<String> {
        let all = tokens(pointer);
        let token = |i: usize| all.get(i).map(String::as_str);
        let (mut parts, rest): (Vec<String>, &[String]) = match (token(0), token(1), token(2), token(3)) {
            (Some("components"), Some(_), Some(name), _) => (vec![sanitize_identifier(name)], &all[3..]),
            (Some("definitions" | "parameters" | "responses"), Some(name), _, _) => {
                (vec![sanitize_identifier(name)], &all[2..])
            }
            (Some("paths"), Some(path), Some(method), Some(section)) => {
                let operation = self
                    .op_names
                    .get(&(path.to_string(), method.to_string()))
                    .map(|n| sanitize_identifier(n))
                    .unwrap_or_else(|| sanitize_identifier(method));
                match section {
                    "requestBody" => {
                        let body = lookup(self.doc, &format!("{}/requestBody", pointer_prefix(&all, 3)))
                            .map(body_name)
                            .unwrap_or_else(|| "body".into());
                        (vec![operation, "IN".into(), sanitize_identifier(&body)], &all[4..])
                    }
                    "responses" if all.len() > 4 => {
                        let status = &all[4];
                        let status = if status.chars().all(|c| c.is_ascii_alphanumeric()) {
                            if status.eq_ignore_ascii_case("default") {
                                "default".into()
                            } else {
                                status.to_ascii_uppercase()
                            }
                        } else {
                            sanitize_identifier(status)
                        };
                        (vec![operation, "OUT".into(), status], &all[5..])
                    }
                    "parameters" if all.len() > 4 => {
                        let name = self.parameter_name(&pointer_prefix(&all, 5));
                        (vec![operation, "IN".into(), sanitize_identifier(&name)], &all[5..])
                    }
                    _ => (Vec::new(), &all[..]),
                }
            }
            _ => (Vec::new(), &all[..]),
        };
        walk_parts(rest, &mut parts);
        if parts.is_empty() {
            parts.push("schema".into());
        }
        parts
    }

    fn parameter_name(&self, pointer: &str) -> String {
        let Some(raw) = lookup(self.doc, pointer) else { return "parameter".into() };
        match self.resolve(pointer.to_string(), raw) {
            Ok((_, parameter)) => text_of(parameter, "name").unwrap_or_else(|| "parameter".into()),
            Err(_) => "parameter".into(),
        }
    }

    // -----------------------------------------------------------------------------------------------
    // Request schemas for validation

    /// A self-contained JSON Schema (2020-12) for the schema at `pointer`: every local `$ref` it reaches
    /// is copied under `$defs`; OpenAPI 3.0 and Swagger dialect (`nullable`, boolean
    /// `exclusiveMinimum`, `type: file`) is translated.
    fn build_schema(&self, pointer: &str, raw: &'a Value) -> Result<Value, ImportError> {
        let mut keys: IndexMap<String, String> = IndexMap::new();
        let mut queue: Vec<String> = Vec::new();
        let root = self.convert(pointer, raw, &mut keys, &mut queue, 0)?;
        let mut defs = Map::new();
        let mut done = HashSet::new();
        while let Some(target) = queue.pop() {
            if !done.insert(target.clone()) {
                continue;
            }
            let node = lookup(self.doc, &target).unwrap_or(&Value::Bool(true));
            let converted = self.convert(&target, node, &mut keys, &mut queue, 0)?;
            defs.insert(keys[&target].clone(), converted);
        }
        let mut root = match root {
            Value::Object(map) => map,
            other => {
                let mut map = Map::new();
                map.insert("allOf".into(), Value::Array(vec![other]));
                map
            }
        };
        root.insert("$schema".into(), Value::String("https://json-schema.org/draft/2020-12/schema".into()));
        if !defs.is_empty() {
            root.insert("$defs".into(), Value::Object(defs));
        }
        Ok(Value::Object(root))
    }

    fn convert(
        &self,
        pointer: &str,
        node: &'a Value,
        keys: &mut IndexMap<String, String>,
        queue: &mut Vec<String>,
        depth: usize,
    ) -> Result<Value, ImportError> {
        if depth > MAX_DEPTH * 2 {
            return Err(ImportError::TooDeep { at: pointer.into(), max: MAX_DEPTH });
        }
        let Value::Object(map) = node else { return Ok(node.clone()) };
        let mut out = Map::new();
        if let Some(reference) = map.get("$ref") {
            let at = child(pointer, "$ref");
            let reference = reference.as_str().ok_or_else(|| {
                invalid(&at, "`$ref` is not a string", "write the reference as \"#/components/schemas/NAME\"")
            })?;
            let target = ref_target(reference, &at)?;
            if lookup(self.doc, &target).is_none() {
                return Err(ImportError::UnresolvedRef {
                    at,
                    reference: reference.into(),
                    hint: self.ref_hint(&target),
                });
            }
            let next = keys.len();
            let key = keys
                .entry(target.clone())
                .or_insert_with(|| {
                    queue.push(target.clone());
                    format!("d{next}")
                })
                .clone();
            out.insert("$ref".into(), Value::String(format!("#/$defs/{key}")));
            if self.version != Version::OpenApi31 {
                // OpenAPI 3.0 and Swagger ignore the siblings of a `$ref`.
                return Ok(Value::Object(out));
            }
        }
        for (key, value) in map {
            let here = child(pointer, key);
            let converted = match key.as_str() {
                "$ref" => continue,
                "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                    let Value::Object(children) = value else { continue };
                    let mut converted = Map::new();
                    for (name, schema) in children {
                        converted.insert(
                            name.clone(),
                            self.convert(&child(&here, name), schema, keys, queue, depth + 1)?,
                        );
                    }
                    Value::Object(converted)
                }
                "items" | "prefixItems" | "allOf" | "anyOf" | "oneOf" => match value {
                    Value::Array(members) => Value::Array(
                        members
                            .iter()
                            .enumerate()
                            .map(|(i, m)| {
                                self.convert(&child(&here, &i.to_string()), m, keys, queue, depth + 1)
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    schema => self.convert(&here, schema, keys, queue, depth + 1)?,
                },
                "additionalProperties"
                | "not"
                | "contains"
                | "if"
                | "then"
                | "else"
                | "propertyNames"
                | "unevaluatedProperties"
                | "unevaluatedItems"
                | "additionalItems" => self.convert(&here, value, keys, queue, depth + 1)?,
                "discriminator" | "xml" | "externalDocs" | "example" | "examples" | "nullable" => continue,
                "type" if value == "file" => continue,
                "exclusiveMinimum" | "exclusiveMaximum" if value.is_boolean() => continue,
                key if key.starts_with("x-") => continue,
                _ => value.clone(),
            };
            out.insert(key.clone(), converted);
        }
        if self.version != Version::OpenApi31 {
            for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
                if map.get(flag) == Some(&Value::Bool(true))
                    && let Some(limit) = out.remove(bound)
                {
                    out.insert(flag.into(), limit);
                }
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(kind)) = out.get("type").cloned() {
                    out.insert("type".into(), json!([kind, "null"]));
                }
                if let Some(Value::Array(values)) = out.get_mut("enum")
                    && !values.contains(&Value::Null)
                {
                    values.push(Value::Null);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[derive(Default)]
struct Collected {
    properties: IndexMap<String, Property>,
    required: HashSet<String>,
    alternatives: Vec<String>,
    additional: Option<Shape>,
}

fn pointer_prefix(tokens: &[String], count: usize) -> String {
    tokens.iter().take(count).fold(String::from("#"), |p, t| child(&p, t))
}

/// Adds the name parts of a path inside a schema: property names; array items, `allOf` members and
/// media types add nothing.
fn walk_parts(rest: &[String], parts: &mut Vec<String>) {
    let mut i = 0;
    while i < rest.len() {
        match rest[i].as_str() {
            "properties" | "patternProperties" | "$defs" | "definitions" => {
                if let Some(name) = rest.get(i + 1) {
                    parts.push(sanitize_identifier(name));
                }
                i += 2;
            }
            "allOf" | "anyOf" | "oneOf" | "prefixItems" | "content" => i += 2,
            "items" => {
                // A tuple's `items/N` adds nothing either.
                let indexed =
                    rest.get(i + 1).is_some_and(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()));
                i += if indexed { 2 } else { 1 };
            }
            "additionalProperties" | "schema" | "not" | "contains" | "additionalItems" => i += 1,
            other => {
                parts.push(sanitize_identifier(other));
                i += 1;
            }
        }
    }
}

fn invalid(at: &str, message: &str, fix: &str) -> ImportError {
    ImportError::Invalid { at: at.into(), message: message.into(), fix: fix.into() }
}

fn array_of<'v>(pointer: &str, keyword: &str, value: &'v Value) -> Result<&'v Vec<Value>, ImportError> {
    value.as_array().ok_or_else(|| {
        invalid(
            &child(pointer, keyword),
            &format!("`{keyword}` is not a list"),
            "write it as a list of schemas",
        )
    })
}

fn text_of(node: &Value, key: &str) -> Option<String> {
    node.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

fn schema_type(map: &Map<String, Value>) -> Option<String> {
    match map.get("type") {
        Some(Value::String(kind)) => return Some(kind.clone()),
        Some(Value::Array(kinds)) => {
            let kinds: Vec<&str> = kinds.iter().filter_map(Value::as_str).filter(|k| *k != "null").collect();
            return match kinds.as_slice() {
                [one] => Some(one.to_string()),
                [] => Some("null".into()),
                _ => None,
            };
        }
        _ => {}
    }
    if map.contains_key("properties") || map.contains_key("additionalProperties") {
        return Some("object".into());
    }
    if map.contains_key("items") {
        return Some("array".into());
    }
    let sample =
        map.get("enum").and_then(|e| e.as_array()?.iter().find(|v| !v.is_null())).or(map.get("const"))?;
    Some(
        match sample {
            Value::String(_) => "string",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_f64() => "number",
            Value::Number(_) => "integer",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Null => "null",
        }
        .into(),
    )
}

fn is_object_like(schema: &Value) -> bool {
    let Value::Object(map) = schema else { return false };
    match schema_type(map).as_deref() {
        Some("object") => true,
        Some(_) => false,
        None => map.contains_key("allOf") || map.contains_key("oneOf") || map.contains_key("anyOf"),
    }
}

fn fill_constraints(constraints: &mut Constraints, map: &Map<String, Value>) {
    let number = |key: &str| map.get(key).and_then(Value::as_u64);
    if constraints.enum_values.is_empty() {
        if let Some(Value::Array(values)) = map.get("enum") {
            constraints.enum_values = values.iter().filter(|v| !v.is_null()).map(scalar_text).collect();
        } else if let Some(value) = map.get("const") {
            constraints.enum_values = vec![scalar_text(value)];
        }
    }
    constraints.pattern =
        constraints.pattern.take().or_else(|| map.get("pattern").and_then(Value::as_str).map(str::to_string));
    constraints.min_length = constraints.min_length.or(number("minLength"));
    constraints.max_length = constraints.max_length.or(number("maxLength"));
    constraints.min_items = constraints.min_items.or(number("minItems"));
    constraints.max_items = constraints.max_items.or(number("maxItems"));
    constraints.minimum =
        constraints.minimum.take().or_else(|| map.get("minimum").filter(|v| v.is_number()).cloned());
    constraints.maximum =
        constraints.maximum.take().or_else(|| map.get("maximum").filter(|v| v.is_number()).cloned());
    constraints.format =
        constraints.format.take().or_else(|| map.get("format").and_then(Value::as_str).map(str::to_string));
    constraints.default =
        constraints.default.take().or_else(|| map.get("default").filter(|v| !v.is_null()).cloned());
    constraints.nullable |= map.get("nullable") == Some(&Value::Bool(true))
        || map.get("type").and_then(Value::as_array).is_some_and(|t| t.iter().any(|k| k == "null"));
}

/// The media type a body or response is read as: JSON first, then forms, then text, then the first.
fn pick_media<'v>(pointer: &str, node: &'v Value) -> Option<(String, String, Option<&'v Value>)> {
    let Value::Object(content) = node.get("content")? else { return None };
    let rank = |media: &str| {
        let media = media.to_ascii_lowercase();
        if media.starts_with("application/json") {
            0
        } else if media.contains("json") {
            1
        } else if media.starts_with("application/x-www-form-urlencoded") {
            2
        } else if media.starts_with("multipart/form-data") {
            3
        } else if media.starts_with("text/") {
            4
        } else {
            5
        }
    };
    let (media, item) = content.iter().min_by_key(|(media, _)| rank(media))?;
    let schema_pointer = child(&child(&child(pointer, "content"), media), "schema");
    Some((media.clone(), schema_pointer, item.get("schema")))
}

fn encoding_of(content_type: &str) -> BodyEncoding {
    let media = content_type.to_ascii_lowercase();
    if media.contains("json") {
        BodyEncoding::Json
    } else if media.starts_with("application/x-www-form-urlencoded") {
        BodyEncoding::Form
    } else if media.starts_with("multipart/") {
        BodyEncoding::Multipart
    } else {
        BodyEncoding::Text
    }
}

fn body_name(request_body: &Value) -> String {
    ["x-name", "x-codegen-request-body-name"]
        .iter()
        .find_map(|key| text_of(request_body, key))
        .unwrap_or_else(|| "body".into())
}

fn swagger_consumes(doc: &Value, op: &Value) -> Option<String> {
    let list = op.get("consumes").or_else(|| doc.get("consumes"))?.as_array()?;
    let media: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    media.iter().find(|m| m.contains("json")).or(media.first()).map(|m| m.to_string())
}
