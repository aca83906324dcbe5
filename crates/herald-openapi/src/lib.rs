//! The service model: what an action takes and returns, with Salesforce-style type names.
//!
//! A service is either an HTTP callout (types inferred from a sample request and response, as Flow's
//! "Create HTTP Callout" does) or, later, an External Service imported from an OpenAPI file. Both end
//! in the same [`Service`] model, which the flow compiler checks assignments against.

mod infer;
mod naming;

pub use infer::{InferError, infer_callout_action};
pub use naming::{registration_type_name, sanitize_identifier};

use indexmap::IndexMap;
use serde::Serialize;

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
            Shape::Any => "Any".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Property {
    pub shape: Shape,
    pub required: bool,
}

/// A generated type, e.g. `ExternalService__KixieService_Send_SMS_IN_body`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ObjectType {
    pub name: String,
    pub properties: IndexMap<String, Property>,
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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Body {
    /// The input name a flow uses for the whole body (`body` for HTTP callouts).
    pub name: String,
    pub shape: Shape,
    pub required: bool,
}

/// A declared response: a status (`200`) or a class (`2XX`, `default`) and its body shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Response {
    pub status: String,
    pub shape: Option<Shape>,
}

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
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Service {
    pub name: String,
    pub named_credential: String,
    pub operations: IndexMap<String, Operation>,
    pub types: IndexMap<String, ObjectType>,
}

impl Service {
    pub fn new(name: impl Into<String>, named_credential: impl Into<String>) -> Service {
        Service {
            name: name.into(),
            named_credential: named_credential.into(),
            operations: IndexMap::new(),
            types: IndexMap::new(),
        }
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
