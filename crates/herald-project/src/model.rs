//! The files of a project folder, as serde reads them. Every struct refuses unknown keys, so a typo is
//! an error with a position instead of a silently ignored setting.

use indexmap::IndexMap;
use serde::Deserialize;
use serde_json::Value;

/// `herald.toml`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub name: Option<String>,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub database: DatabaseConfig,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    #[serde(default)]
    pub automation: AutomationConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig { listen: default_listen() }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A SQLite file, relative to the project folder.
    #[serde(default = "default_database")]
    pub path: String,
    /// A PostgreSQL database (`postgres://user@host/db`) instead of the SQLite file: several herald
    /// servers can share it. `HERALD_DATABASE_URL` and `--db` override it.
    #[serde(default)]
    pub url: Option<String>,
    /// What an answered write survives: `normal`, a crash of the process; `full`, a power loss too,
    /// at a cost in throughput (docs/security.md, "Durability").
    #[serde(default)]
    pub synchronous: Synchronous,
    /// With PostgreSQL, the most connections one node opens to the server (the writer, the listener
    /// and the readers); at least 3 are used. Ignored by SQLite.
    #[serde(default = "default_connections")]
    pub connections: usize,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: default_database(),
            url: None,
            synchronous: Synchronous::default(),
            connections: default_connections(),
        }
    }
}

fn default_connections() -> usize {
    10
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    #[default]
    Normal,
    Full,
}

fn default_database() -> String {
    "herald.db".into()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// ISO 3166 alpha-2 country for phone numbers written without a country code.
    pub default_country: Option<String>,
    /// IANA time zone for TODAY(), DATEVALUE() and date-times rendered in templates (default UTC).
    pub timezone: Option<String>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig { workers: default_workers(), default_country: None, timezone: None }
    }
}

/// Runs in progress at once. A run waiting for a provider's answer holds its place but no thread;
/// enough places keep the database's commit groups and 8x8's batches full under load.
fn default_workers() -> usize {
    32
}

/// The user that record-triggered flows run as when the change came from no signed-in user
/// (Salesforce's "Automated Process" user), and the permission sets assigned to it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutomationConfig {
    #[serde(default = "default_automation_user")]
    pub user: String,
    #[serde(default)]
    pub permission_sets: Vec<String>,
}

impl Default for AutomationConfig {
    fn default() -> Self {
        AutomationConfig { user: default_automation_user(), permission_sets: Vec::new() }
    }
}

fn default_automation_user() -> String {
    "Automated Process".into()
}

/// `objects/<Name>.yaml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectDef {
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    pub label: Option<String>,
    /// The three characters every record id of this object starts with (Lead: `00Q`).
    pub key_prefix: Option<String>,
    pub fields: IndexMap<String, FieldDef>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub label: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Maximum length in characters for text-like fields.
    pub length: Option<usize>,
    /// Picklist values.
    #[serde(default)]
    pub values: Vec<String>,
    /// Objects a reference field may point to (Task.WhoId: Lead, Contact).
    #[serde(default)]
    pub references: Vec<String>,
    /// Lookup fields: the object the field points to (`OwnerId: {type: lookup, to: User}`).
    pub to: Option<String>,
    /// Lookup fields: the name merge fields traverse it by (`{!$Record.Owner.Name}`); Salesforce's
    /// default when absent: `OwnerId` -> `Owner`, `Account__c` -> `Account__r`.
    pub relationship: Option<String>,
    pub default: Option<Value>,
}

impl FieldDef {
    /// The relationship name of a lookup field called `field`: the declared one, else Salesforce's
    /// default (`XxxId` -> `Xxx`, `Foo__c` -> `Foo__r`); `None` when neither applies.
    pub fn relationship_name(&self, field: &str) -> Option<String> {
        if self.field_type != FieldType::Lookup {
            return None;
        }
        if let Some(name) = &self.relationship {
            return Some(name.clone());
        }
        if let Some(stem) = field.strip_suffix("__c") {
            return Some(format!("{stem}__r"));
        }
        field.strip_suffix("Id").filter(|stem| !stem.is_empty()).map(String::from)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Textarea,
    Phone,
    Email,
    Url,
    Picklist,
    Number,
    Currency,
    Percent,
    Checkbox,
    Date,
    Datetime,
    Time,
    Reference,
    /// A relationship to one record of another object (Salesforce's Lookup Relationship), traversed by
    /// merge fields (`{!$Record.Owner.Name}`).
    #[serde(alias = "Lookup")]
    Lookup,
    Id,
}

impl FieldType {
    pub fn is_text_like(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::Textarea
                | FieldType::Phone
                | FieldType::Email
                | FieldType::Url
                | FieldType::Picklist
                | FieldType::Reference
                | FieldType::Lookup
                | FieldType::Id
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Textarea => "textarea",
            FieldType::Phone => "phone",
            FieldType::Email => "email",
            FieldType::Url => "url",
            FieldType::Picklist => "picklist",
            FieldType::Number => "number",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Checkbox => "checkbox",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Time => "time",
            FieldType::Reference => "reference",
            FieldType::Lookup => "lookup",
            FieldType::Id => "id",
        }
    }
}

/// `credentials/<Name>.yaml` with `kind: external-credential`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalCredentialDef {
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    pub label: Option<String>,
    pub protocol: Protocol,
    pub principals: Vec<PrincipalDef>,
    /// OAuth 2.0 client credentials: the token endpoint (https, or http on localhost).
    pub token_url: Option<String>,
    /// OAuth 2.0 client credentials: the scope to ask for, if the server needs one.
    pub scope: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    Custom,
    NoAuthentication,
    Basic,
    /// OAuth 2.0 client credentials: the principal holds `client_id` and `client_secret`; herald fetches
    /// and caches the access token.
    #[serde(rename = "oauth2_client_credentials")]
    OAuth2ClientCredentials,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalDef {
    pub name: String,
    #[serde(default, rename = "type")]
    pub principal_type: PrincipalType,
    /// Parameter names only; values are set with `herald credential set` and kept encrypted.
    #[serde(default)]
    pub parameters: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalType {
    #[default]
    Named,
    PerUser,
}

/// `credentials/<Name>.yaml` with `kind: named-credential`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedCredentialDef {
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    pub label: Option<String>,
    pub url: String,
    pub external_credential: String,
    #[serde(default)]
    pub generate_authorization_header: bool,
    #[serde(default)]
    pub allow_formulas_in_header: bool,
    #[serde(default)]
    pub allow_formulas_in_body: bool,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Sends allowed through this credential; the provider's published limits when absent.
    pub rate_limit: Option<RateLimitDef>,
    /// Whether single 8x8 SMS sends queued behind others on this credential share one batch request
    /// (`true` when absent; no other provider's sends are ever batched).
    pub batch_sends: Option<bool>,
}

/// Limits applied before a callout leaves, per named credential. A run over the limit waits without
/// holding up runs on other credentials.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitDef {
    pub per_second: Option<u32>,
    pub per_day: Option<u32>,
    /// Callouts in flight at once.
    pub concurrency: Option<u32>,
}

/// `webhooks/<Name>.yaml` with `kind: webhook`: an endpoint a provider posts delivery receipts and
/// inbound messages to, at `POST /webhooks/<Name>`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDef {
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    pub label: Option<String>,
    /// The name of a provider whose webhooks herald reads (see `herald_providers::Provider::with_webhooks`).
    pub provider: String,
    /// The named credential whose sends this endpoint reports on (and, for Twilio, whose auth token
    /// signs the callbacks).
    pub named_credential: String,
    /// The URL the provider is configured with, when herald sits behind a proxy (Twilio signs it).
    pub public_url: Option<String>,
}

/// `permissions/<Name>.yaml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionSetDef {
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    /// Grants written the Salesforce way: `ExternalCredential-Principal`.
    #[serde(default)]
    pub external_credential_principal_access: Vec<String>,
    /// What the users holding this set may do through the HTTP API.
    #[serde(default)]
    pub api_scopes: Vec<ApiScope>,
}

/// A permission of the HTTP API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiScope {
    ReadRecords,
    WriteRecords,
    ReadRuns,
    ManageFlows,
    ManageCredentials,
    /// Salesforce's "Run Flows": invoke an autolaunched flow over the API.
    RunFlows,
}

impl ApiScope {
    pub fn name(self) -> &'static str {
        match self {
            ApiScope::ReadRecords => "read_records",
            ApiScope::WriteRecords => "write_records",
            ApiScope::ReadRuns => "read_runs",
            ApiScope::ManageFlows => "manage_flows",
            ApiScope::ManageCredentials => "manage_credentials",
            ApiScope::RunFlows => "run_flows",
        }
    }
}

/// `services/<Name>.yaml` with `kind: external-service`: an OpenAPI file registered against a named
/// credential, as Salesforce's External Services does.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalServiceDef {
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    pub label: Option<String>,
    pub named_credential: String,
    /// The OpenAPI (3.0, 3.1) or Swagger 2.0 file, JSON or YAML, relative to this file.
    pub spec: String,
    /// The operations to import, by operationId; all when absent.
    pub operations: Option<Vec<String>>,
    /// One of the spec's server URLs (a region); the named credential's URL when absent.
    pub server: Option<String>,
    /// A provider name from the registry (`herald_providers::Provider::names`); detected from the host when absent.
    pub provider: Option<String>,
}

/// `services/<Name>.yaml` with `kind: http-callout`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalloutServiceDef {
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    pub label: Option<String>,
    pub named_credential: String,
    /// A provider name from the registry (`herald_providers::Provider::names`); detected from the host when absent.
    pub provider: Option<String>,
    pub actions: IndexMap<String, CalloutActionDef>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalloutActionDef {
    pub label: Option<String>,
    pub method: String,
    pub path: String,
    /// A JSON object, written as YAML or pasted as a JSON string.
    pub sample_request: Option<Value>,
    pub sample_response: Option<Value>,
}

/// `flows/<Name>.yaml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDef {
    pub kind: Option<String>,
    #[serde(default)]
    pub name: String,
    pub label: Option<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub status: FlowStatus,
    /// Whose permissions the run uses for callouts: the user whose change triggered it (default), or
    /// the automation user of herald.toml.
    #[serde(default)]
    pub run_as: RunAs,
    /// The record change that starts the flow. A flow without one is autolaunched (Salesforce's
    /// "Autolaunched Flow (No Trigger)"): it starts from the values of its input variables.
    pub trigger: Option<TriggerDef>,
    #[serde(default)]
    pub variables: IndexMap<String, VariableDef>,
    /// Formula resources: typed values computed from a formula each time they are read.
    #[serde(default)]
    pub formulas: IndexMap<String, FormulaDef>,
    /// Text templates: plain text with merge fields, rendered each time they are read.
    #[serde(default)]
    pub text_templates: IndexMap<String, TextTemplateDef>,
    /// Constants: typed values that never change during a run.
    #[serde(default)]
    pub constants: IndexMap<String, ConstantDef>,
    pub start: String,
    pub elements: IndexMap<String, ElementDef>,
    /// Salesforce's scheduled paths of a record-triggered flow: each runs later, as a run of its own
    /// that waits durably, from its own start element, by name.
    #[serde(default)]
    pub scheduled_paths: IndexMap<String, ScheduledPathDef>,
    /// Salesforce's "Run Asynchronously" path: a run of its own from its own start element, started
    /// after the record's commit like the immediate path.
    pub async_path: Option<AsyncPathDef>,
}

/// One scheduled path: when it runs (a time source and an offset) and where it starts.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledPathDef {
    pub label: Option<String>,
    /// A Date or DateTime field of the triggering object; the moment of the trigger when absent.
    pub field: Option<String>,
    /// How far from the time source: one of `minutes`, `hours`, `days`.
    pub offset: DurationDef,
    /// `after` (default) or `before` the time source; `before` needs a `field`.
    #[serde(default)]
    pub direction: OffsetDirection,
    /// The path's first element.
    pub start: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsyncPathDef {
    pub label: Option<String>,
    pub start: String,
}

/// A length of time written as one of `minutes`, `hours` or `days` (a whole number, 0 or more).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DurationDef {
    pub minutes: Option<i64>,
    pub hours: Option<i64>,
    pub days: Option<i64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetDirection {
    #[default]
    After,
    Before,
}

/// A Wait element: how long (`minutes`/`hours`/`days`) or until when (`until`, a DateTime formula).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitDef {
    pub minutes: Option<i64>,
    pub hours: Option<i64>,
    pub days: Option<i64>,
    /// A formula giving the DateTime to wait for; a time already past goes on at once.
    pub until: Option<String>,
}

/// A formula resource (Salesforce's Formula resource): `{!name}` reads the formula's value at that
/// moment, so it follows the variables and outputs it reads.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormulaDef {
    /// The data type the formula must return: Text, Number, Boolean, Date, DateTime or Time.
    #[serde(rename = "type")]
    pub data_type: String,
    pub expression: String,
    pub description: Option<String>,
}

/// A text template (Salesforce's Text Template resource, "View as Plain Text").
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextTemplateDef {
    pub text: String,
    pub description: Option<String>,
}

/// A constant (Salesforce's Constant resource): a typed literal that cannot be assigned.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConstantDef {
    /// Text, Number, Boolean or Date.
    #[serde(rename = "type")]
    pub data_type: String,
    pub value: Value,
    pub description: Option<String>,
}

/// A custom label (Salesforce's Custom Label), read in flows as `{!$Label.Name}`. A file in
/// `labels/` holds any number of them, by name.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelDef {
    pub value: String,
    pub description: Option<String>,
    /// Salesforce's "Short Description"; for people.
    pub short_description: Option<String>,
    /// The language of `value` (`en_US`); for people, herald has no translations.
    pub language: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunAs {
    #[default]
    TriggeringUser,
    Automation,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowStatus {
    #[default]
    Active,
    Draft,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerDef {
    pub object: String,
    pub on: TriggerEvent,
    /// Entry condition as a formula returning Boolean.
    pub when: Option<String>,
    /// Entry condition as a list of conditions joined by `logic`.
    #[serde(default)]
    pub conditions: Vec<ConditionDef>,
    /// `and` (default), `or`, or custom logic such as `1 AND (2 OR 3)`.
    pub logic: Option<String>,
    /// Salesforce's "Only when a record is updated to meet the condition requirements".
    #[serde(default)]
    pub only_when_updated_to_meet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerEvent {
    Create,
    Update,
    #[serde(alias = "create-or-update")]
    CreateOrUpdate,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionDef {
    /// A field of the triggering record (entry conditions), shorthand for `left: "{!$Record.Field}"`.
    pub field: Option<String>,
    /// A reference: `{!$Record.Phone}`, `{!myVariable}`.
    pub left: Option<String>,
    pub operator: Operator,
    /// A literal, or a text with merge fields.
    pub right: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Operator {
    EqualTo,
    NotEqualTo,
    GreaterThan,
    LessThan,
    GreaterThanOrEqualTo,
    LessThanOrEqualTo,
    StartsWith,
    EndsWith,
    Contains,
    IsNull,
    IsBlank,
    IsChanged,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDef {
    /// Text, Number, Boolean, Date, DateTime, Time, or a generated type name.
    #[serde(rename = "type")]
    pub data_type: String,
    #[serde(default)]
    pub collection: bool,
    pub default: Option<Value>,
    /// Salesforce's "Available for input": an autolaunched flow's run may be started with a value for
    /// it.
    #[serde(default)]
    pub input: bool,
    /// Salesforce's "Available for output": an autolaunched flow's run shows its value at the end.
    #[serde(default)]
    pub output: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElementDef {
    pub label: Option<String>,
    /// Action: `Service.Action`.
    pub action: Option<String>,
    #[serde(default)]
    pub inputs: IndexMap<String, Value>,
    /// Action outputs stored into variables: output name -> variable.
    #[serde(default)]
    pub outputs: IndexMap<String, String>,
    /// Create Records: the object.
    pub create: Option<String>,
    /// Update Records: the object whose records are changed.
    pub update: Option<String>,
    /// Delete Records: the object whose records are deleted.
    pub delete: Option<String>,
    /// Update/Delete Records: the record or records, as one reference (`"{!$Record}"`, `"{!lead}"`,
    /// `"{!leads}"`, `"{!Get_Lead}"`); the other way is `conditions`.
    pub record: Option<String>,
    /// Update/Delete Records by conditions: the most records one element may change (at most and by
    /// default 10,000, Salesforce's DML row limit); more matches fail the element and change nothing.
    pub max_rows: Option<u64>,
    /// Get Records: a record variable (`how_many: first`) or record collection variable
    /// (`how_many: all`) of the same object that receives the records (Salesforce's "store in variable").
    pub store_in: Option<String>,
    /// Create and Update Records: field values (`Status: Working`).
    #[serde(default)]
    pub fields: IndexMap<String, Value>,
    /// Create Records: a Text variable that receives the new record's id.
    pub store_id_in: Option<String>,
    /// Assignment: ordered `target: value` items; a value `{add: X}` uses another operator.
    pub assign: Option<Vec<IndexMap<String, Value>>>,
    /// Decision: outcomes in order; the first that holds wins.
    pub decision: Option<Vec<OutcomeDef>>,
    /// Decision: where to go when no outcome holds.
    pub default: Option<String>,
    pub next: Option<String>,
    pub fault: Option<String>,
    /// Action: how failed sends are retried; the provider's defaults when absent.
    pub retry: Option<RetryDef>,
    /// Get Records: the object whose records are read.
    pub get: Option<String>,
    /// Get Records: which records, as conditions on the object's fields.
    #[serde(default)]
    pub conditions: Vec<ConditionDef>,
    /// Get Records: how `conditions` combine (`and`, `or`, custom logic).
    pub logic: Option<String>,
    /// Get Records: the field the records are sorted by.
    pub sort_by: Option<String>,
    pub sort_order: Option<SortOrder>,
    /// Get Records: only the first record (Salesforce's default) or all of them.
    pub how_many: Option<HowMany>,
    /// Get Records: the fields kept of each record (`Id` always); every field when absent.
    pub store_fields: Option<Vec<String>>,
    /// Loop: the collection, as one reference (`"{!Get_Members}"`, `"{!phones}"`).
    #[serde(rename = "loop")]
    pub loop_over: Option<String>,
    /// Loop: the element run for each item ("For Each Item").
    pub each: Option<String>,
    /// Loop: where the run goes after the last item ("After Last Item").
    pub after: Option<String>,
    pub direction: Option<LoopDirection>,
    /// Subflow: the autolaunched flow called, with `inputs` (its input variables) and `outputs` (its
    /// output variables into this flow's variables).
    pub subflow: Option<String>,
    /// Wait (autolaunched flows): the run parks, durably, until the time comes.
    pub wait: Option<WaitDef>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    #[default]
    #[serde(alias = "asc")]
    Ascending,
    #[serde(alias = "desc")]
    Descending,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HowMany {
    #[default]
    First,
    All,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoopDirection {
    #[default]
    FirstToLast,
    LastToFirst,
}

/// A retry policy: exponential backoff with full jitter, bounded by attempts and by time.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDef {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: Option<u32>,
    /// No retry starts later than this many seconds after the first attempt.
    pub max_seconds: Option<u64>,
    pub base_delay_ms: Option<u64>,
    pub max_delay_ms: Option<u64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeDef {
    pub name: String,
    pub label: Option<String>,
    pub when: Option<String>,
    #[serde(default)]
    pub conditions: Vec<ConditionDef>,
    pub logic: Option<String>,
    pub next: Option<String>,
}
