//! The service model: what an action takes and returns, with Salesforce-style type names.
//!
//! A service is either an HTTP callout (types inferred from a sample request and response, as Flow's
//! "Create HTTP Callout" does) or an External Service imported from an OpenAPI file ([`import`]). Both
//! end in the same [`Service`] model, which the flow compiler checks assignments against
//! ([`field_path`], [`check_enum`]) and the engine validates requests with ([`validate_request`]).

mod compare;
mod describe;
mod fields;
mod headers;
mod import;
mod infer;
pub mod limits;
mod naming;
mod paths;
mod validate;

pub use compare::{Contradiction, ContradictionKind, compare};
pub use describe::describe;
pub use fields::{EnumCheck, FieldInfo, PathError, check_enum, field_path};
pub use headers::header_refusal;
pub use import::{ImportError, ImportOptions, import};
pub use infer::{InferError, infer_callout_action};
pub use naming::{api_name, is_reserved_word, registration_type_name, sanitize_identifier};
pub use paths::path_refusal;
pub use validate::{RequestProblem, validate_request};

use indexmap::IndexMap;
use serde::Serialize;
use serde_json::Value;
use std::sync::{Arc, OnceLock};

/// The shape of one value in a request or a response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    Text,
    Number,
    Integer,
    Boolean,
    /// An object of a named generated type (its properties live in [`Service::types`]).
    Object {
        type_name: String,
    },
    List {
        item: Box<Shape>,
    },
    /// An object with free-form keys (`additionalProperties`), each value of one shape; a schema
    /// `{type: object}` with no properties is a map of [`Shape::Any`].
    Map {
        value: Box<Shape>,
    },
    /// A value whose shape the sample did not reveal (a `null` or an empty list in the sample).
    Any,
}

impl Shape {
    /// The name an admin sees for this shape, as Flow shows it.
    pub fn describe(&self) -> String {
        match self {
            Shape::Text => "Text".into(),
            Shape::Number => "Number".into(),
            Shape::Integer => "Integer".into(),
            Shape::Boolean => "Boolean".into(),
            Shape::Object { type_name } => type_name.clone(),
            Shape::List { item } => format!("List of {}", item.describe()),
            Shape::Map { value } => format!("Map of {}", value.describe()),
            Shape::Any => "Any".into(),
        }
    }
}

/// What a spec says a value may be, beyond its shape. Empty for inferred (sample-based) types.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Constraints {
    /// The allowed values (`enum`, or a `const`), as text; JSON text for non-string values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub enum_values: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_items: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_items: Option<u64>,
    /// `date-time`, `uri`, `uuid`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The spec allows `null` (`nullable: true`, or `"null"` among the 3.1 types).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub nullable: bool,
}

impl Constraints {
    pub fn is_empty(&self) -> bool {
        self == &Constraints::default()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Property {
    pub shape: Shape,
    pub required: bool,
    /// The identifier a flow may also use for this property: the JSON name, escaped like a type name
    /// (`catalog_id` -> `catalogx5fid`) and with `z0` in front of a reserved word (`type` -> `z0type`).
    /// The map key in [`ObjectType::properties`] is the JSON name sent on the wire.
    pub api_name: String,
    pub description: Option<String>,
    pub constraints: Constraints,
}

impl Property {
    /// A property with no description and no constraints (what sample inference produces).
    pub fn new(json_name: &str, shape: Shape, required: bool) -> Property {
        Property {
            shape,
            required,
            api_name: api_name(json_name),
            description: None,
            constraints: Constraints::default(),
        }
    }
}

/// A generated type, e.g. `ExternalService__KixieService_Sendx5fSMS_IN_body`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectType {
    pub name: String,
    pub properties: IndexMap<String, Property>,
    pub description: Option<String>,
    /// When the type came from `oneOf`/`anyOf`: the alternatives (type names or shapes), of which the
    /// request must match one (`oneOf`) or at least one (`anyOf`); the properties are their union.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<String>,
    /// Extra free-form keys allowed beside the named properties (`additionalProperties` on an object
    /// that also has `properties`), with the shape of their values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_properties: Option<Shape>,
}

impl ObjectType {
    pub fn new(name: impl Into<String>, properties: IndexMap<String, Property>) -> ObjectType {
        ObjectType {
            name: name.into(),
            properties,
            description: None,
            alternatives: Vec::new(),
            additional_properties: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn parse(text: &str) -> Option<Method> {
        match text.to_ascii_uppercase().as_str() {
            "GET" => Some(Method::Get),
            "POST" => Some(Method::Post),
            "PUT" => Some(Method::Put),
            "PATCH" => Some(Method::Patch),
            "DELETE" => Some(Method::Delete),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamLocation {
    Path,
    Query,
    Header,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Parameter {
    pub name: String,
    pub location: ParamLocation,
    pub shape: Shape,
    pub required: bool,
    pub description: Option<String>,
    pub constraints: Constraints,
}

/// How a body is encoded on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyEncoding {
    /// `application/json` (and `*/*+json`).
    Json,
    /// `application/x-www-form-urlencoded`: the body object's properties become form fields.
    Form,
    /// `multipart/form-data`.
    Multipart,
    /// `text/plain` and any other media type: the body is sent as text.
    Text,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Body {
    /// The input name a flow uses for the whole body (`body` for HTTP callouts and OpenAPI 3 request
    /// bodies; the parameter's name for a Swagger 2.0 `in: body` parameter).
    pub name: String,
    pub shape: Shape,
    pub required: bool,
    /// The media type the spec declares (`application/json`, `application/x-www-form-urlencoded`, ...).
    pub content_type: String,
    pub encoding: BodyEncoding,
}

/// A declared response: a status (`200`) or a class (`2XX`, `default`) and its body shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Response {
    pub status: String,
    pub shape: Option<Shape>,
    pub description: Option<String>,
}

/// A server URL the spec declares (`servers[].url`), e.g. one region of 8x8.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Server {
    pub url: String,
    pub description: Option<String>,
}

/// A compiled JSON Schema validator, built on first use and shared by every clone of the operation.
#[derive(Clone, Default)]
pub struct ValidatorCache(Arc<OnceLock<Result<jsonschema::Validator, String>>>);

impl ValidatorCache {
    pub(crate) fn get_or_compile(&self, schema: &Value) -> &Result<jsonschema::Validator, String> {
        self.0.get_or_init(|| validate::compile(schema))
    }
}

impl std::fmt::Debug for ValidatorCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "ValidatorCache(compiled)" } else { "ValidatorCache(empty)" })
    }
}

/// Two caches are always equal: the cache is derived from [`Operation::request_schema`].
impl PartialEq for ValidatorCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for ValidatorCache {}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// The action's API name, used in flows as `Service.Name`.
    pub name: String,
    pub label: String,
    pub method: Method,
    pub path: String,
    pub parameters: Vec<Parameter>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    /// The spec's `operationId`, when it differs from [`Operation::name`] or the name was derived.
    pub operation_id: Option<String>,
    pub description: Option<String>,
    /// A self-contained JSON Schema (draft 2020-12, local `$defs` only) for the body, when the
    /// operation came from a spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_schema: Option<Value>,
    #[serde(skip)]
    pub validator: ValidatorCache,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Service {
    pub name: String,
    pub named_credential: String,
    pub operations: IndexMap<String, Operation>,
    pub types: IndexMap<String, ObjectType>,
    /// The spec's server URLs in its order (empty for HTTP callouts).
    pub servers: Vec<Server>,
    /// The server chosen at import ([`ImportOptions::server`]); `None` means the named credential's URL.
    pub server: Option<String>,
}

impl Service {
    pub fn new(name: impl Into<String>, named_credential: impl Into<String>) -> Service {
        Service {
            name: name.into(),
            named_credential: named_credential.into(),
            operations: IndexMap::new(),
            types: IndexMap::new(),
            servers: Vec::new(),
            server: None,
        }
    }

    /// The server whose host matches `host` (case-insensitive), e.g. to pick a region by host name.
    pub fn server_for_host(&self, host: &str) -> Option<&Server> {
        self.servers.iter().find(|s| {
            let rest = s.url.split_once("://").map_or(s.url.as_str(), |(_, r)| r);
            rest.split(['/', ':']).next().is_some_and(|h| h.eq_ignore_ascii_case(host))
        })
    }

    /// The properties of the body object, when the body is an object: the flat inputs a flow may map
    /// one by one (`businessid`, `target`, ...).
    pub fn body_properties(&self, operation: &Operation) -> Option<&ObjectType> {
        match &operation.body.as_ref()?.shape {
            Shape::Object { type_name } => self.types.get(type_name),
            _ => None,
        }
    }
}
