//! Every code herald reports, declared once: the project, flow, formula and warning codes of a
//! diagnostic (`error[HF006]: …`) and the `errorCode` values of the record API.
//!
//! Codes are a promise to users: they search for them, and `docs/errors.md` explains each one. Declaring
//! them here as constants, instead of as string literals at each place that reports one, lets the tests
//! in `tests/codes.rs` hold the declaration, the documentation and the code that reports them together:
//! every declared code has a row in `docs/errors.md` and every row a declared code; every code is
//! reported somewhere (as `codes::HF006`), and no string literal stands in for one. A code that is no
//! longer reported is moved to [`RETIRED`], never deleted, so its number is never given a second
//! meaning.

use std::fmt;

/// A diagnostic code: `HP` project files, `HF` flows, `HX` formulas and merge fields, `HW` warnings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Code {
    id: &'static str,
    title: &'static str,
}

impl Code {
    /// The code as users see it, e.g. `HF006`.
    pub const fn id(self) -> &'static str {
        self.id
    }

    /// One line on what the code means; `docs/errors.md` has the full explanation and the fix.
    pub const fn title(self) -> &'static str {
        self.title
    }

    /// The declared code with this id, if any (retired codes are not found).
    pub fn lookup(id: &str) -> Option<Code> {
        ALL.iter().copied().find(|code| code.id == id)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id)
    }
}

impl PartialEq<str> for Code {
    fn eq(&self, other: &str) -> bool {
        self.id == other
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.id == *other
    }
}

impl PartialEq<Code> for &str {
    fn eq(&self, other: &Code) -> bool {
        *self == other.id
    }
}

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.id
    }
}

/// A code that is no longer reported (or never was, though documented). Its number stays taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retired {
    pub id: &'static str,
    /// Why the number is not used, for the row in `docs/errors.md`.
    pub reason: &'static str,
}

/// Declares each code as a constant of its own name, and [`ALL`] listing them in order. A code declared
/// twice is a compile error (the constant is defined twice).
macro_rules! codes {
    ($($id:ident: $title:literal;)*) => {
        $(
            #[doc = $title]
            pub const $id: Code = Code { id: stringify!($id), title: $title };
        )*
        /// Every code in force, in the order declared (by family, then number).
        pub const ALL: &[Code] = &[$($id),*];
    };
}

codes! {
    // HP: project files (herald-project).
    HP001: "The folder has no herald.toml, or it cannot be read.";
    HP002: "A project file cannot be read.";
    HP003: "A file does not parse or does not fit the format.";
    HP004: "A file's `kind` does not belong in its folder, or is missing.";
    HP005: "Two files define the same name.";
    HP006: "A file's `name` differs from its file name.";
    HP007: "A name is not a valid API name.";
    HP010: "An object's `key_prefix` is invalid or already used.";
    HP011: "An object declares a standard field.";
    HP012: "A picklist field has no `values`.";
    HP013: "A field references an unknown object.";
    HP014: "A principal lacks a parameter its protocol needs, or a credential has no principal.";
    HP015: "A named credential's `url` is not usable.";
    HP016: "A named credential or service names an unknown credential.";
    HP017: "A permission set grants an unknown principal.";
    HP018: "`[automation] permission_sets` names an unknown permission set.";
    HP019: "A service's `provider` is not known.";
    HP020: "An action's `method` is not known.";
    HP021: "An action cannot be built from its path and samples.";
    HP022: "A sample pasted as a string is not valid JSON.";
    HP023: "`[runtime] timezone` is not a known IANA time zone.";
    HP024: "An external service's `spec` file is not in the project.";
    HP025: "An OpenAPI file cannot be imported.";
    HP026: "OAuth 2.0 client credentials without a usable `token_url`, or a stray one.";
    HP027: "A webhook is not usable.";
    HP028: "`[runtime] default_country` is not a known country code.";
    HP029: "A link that herald does not follow.";
    HP030: "A FIFO, socket or device where a project file should be.";
    HP031: "A file is larger than herald reads for its kind.";
    HP032: "A YAML project file nests too deeply.";
    HP033: "A YAML project file holds too many nodes.";
    HP034: "A header that herald sets itself is set by a project file.";
    HP035: "`[database] url` is not a PostgreSQL URL.";

    // HF: flows (herald-flow).
    HF001: "An unknown object.";
    HF002: "`only_when_updated_to_meet` where it cannot apply.";
    HF003: "An element or variable name is not a valid API name.";
    HF004: "A variable's `type` is not known.";
    HF005: "A variable's `default` does not fit its type.";
    HF006: "A connector names no element of the flow.";
    HF007: "Both `when` and `conditions`, or `logic` without `conditions`.";
    HF008: "A `when` formula does not return Boolean.";
    HF009: "The custom `logic` is invalid.";
    HF010: "A condition's left side is wrong.";
    HF011: "A condition's `right` is missing or does not fit the operator.";
    HF012: "`IsChanged` where it cannot apply.";
    HF013: "An element has none, or more than one, kind.";
    HF014: "A key does not belong to the element's kind.";
    HF015: "A decision without outcomes, or an outcome without a condition.";
    HF016: "An unknown service or action.";
    HF017: "An action input names nothing the action takes.";
    HF018: "An action's `outputs` names something other than `responseCode` or `responseBody`.";
    HF019: "An undeclared variable, or `store_id_in` on a variable that is not Text.";
    HF020: "A Create Records field the object does not have.";
    HF021: "A Create Records literal does not fit the field's type.";
    HF022: "Create Records does not set a required field.";
    HF023: "An Assignment item is not one `target: value` pair.";
    HF024: "An Assignment target's path does not fit the variable's type.";
    HF025: "A misspelt Assignment operator.";
    HF026: "An Assignment operator and value that cannot work for the target.";
    HF027: "A literal that is not one of the spec's enum values.";
    HF028: "An action input cannot take the value.";
    HF029: "A required field of an action's `body` is never assigned.";
    HF030: "An action's `retry` cannot work.";
    HF031: "A Get Records element names an unknown field or a value of the wrong type.";
    HF032: "A Loop without a collection or without `each`.";
    HF033: "A variable marked `input` or `output` in a record-triggered flow.";
    HF034: "An Update Records or Delete Records element cannot work.";
    HF035: "A record variable or record collection variable is used wrongly.";
    HF036: "A merge field traverses an unknown relationship or goes too deep.";
    HF037: "A lookup field cannot work.";
    HF038: "An Update or Delete Records element's row limit is out of range.";
    HF040: "A formula resource or constant of an unknown type, or whose expression or value is not of its type.";
    HF041: "Formula resources or text templates that read each other in a cycle, or through too long a chain.";
    HF042: "A resource name that is not an API name or is taken by a variable, element or other resource.";
    HF043: "An Assignment or an output that writes to a constant, formula or text template.";
    HF044: "A custom label that is not an API name or is defined twice.";
    HF045: "A Subflow names an unknown flow, or one that is not autolaunched.";
    HF046: "A Subflow input is not an input variable of the subflow, or its value has the wrong type.";
    HF047: "A Subflow output is not an output variable of the subflow, or its target variable cannot take it.";
    HF048: "Subflows call each other in a cycle.";
    HF049: "Subflows are nested deeper than the limit.";
    HF050: "A scheduled or asynchronous path in an autolaunched flow, or a Wait element in a record-triggered one.";
    HF051: "A scheduled path's offset or a Wait's length that is not one whole unit of time.";
    HF052: "A scheduled path's time source is not a Date or DateTime field of the object.";
    HF053: "A Wait with both `until` and a length, or an `until` that is not a DateTime.";
    HF054: "A scheduled path name that is not an API name.";

    // HW: warnings (herald-flow); they do not stop a project from loading.
    HW001: "The fixed text of an SMS holds a character outside GSM-7.";
    HW002: "A text template holds HTML tags.";
    HW003: "An imported spec spells an enum value differently from the provider's published spec.";
    HW004: "An imported spec leaves out, or makes optional, a field the provider's published spec requires.";
    HW005: "An imported spec gives a field another type than the provider's published spec.";
    HW006: "Scheduled paths on a flow that starts on every update meeting its condition.";

    // HX: formulas and merge fields (herald-expr).
    HX001: "Unknown function.";
    HX002: "Wrong number of arguments.";
    HX003: "Type mismatch.";
    HX004: "Unknown reference, or a reference not allowed here.";
    HX005: "Syntax error.";
    HX006: "Text literal or comment not closed.";
    HX007: "Merge field `{!` not closed with `}`.";
    HX008: "A character that cannot start a token.";
    HX009: "Invalid number literal.";
    HX010: "Invalid regular expression.";
    HX011: "Empty formula or empty merge field.";
    HX013: "Nested too deeply.";
    HX014: "Invalid escape in a text literal.";
    HX015: "The formula's type is not the one required.";
    HX016: "An unknown algorithm in HASH or HMAC.";
    HX017: "A template merge field of type Blob.";
}

/// Codes that are not reported; each keeps a row in `docs/errors.md` so its number is never reused.
pub const RETIRED: &[Retired] = &[Retired {
    id: "HX012",
    reason: "Skipped when the formula codes were numbered; documented as reserved, never reported.",
}];

/// The `errorCode` of a record API error (`[{"errorCode", "message", "fields"}]`), with the HTTP
/// status it is answered with, so a code and its status cannot drift apart.
pub mod api {
    use std::fmt;

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct ApiCode {
        id: &'static str,
        status: u16,
        title: &'static str,
    }

    impl ApiCode {
        /// The `errorCode` as clients see it, e.g. `INVALID_FIELD`.
        pub const fn id(self) -> &'static str {
            self.id
        }

        /// The HTTP status of an answer whose first entry has this code.
        pub const fn status(self) -> u16 {
            self.status
        }

        pub const fn title(self) -> &'static str {
            self.title
        }
    }

    impl fmt::Display for ApiCode {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.id)
        }
    }

    macro_rules! api_codes {
        ($($id:ident = $status:literal: $title:literal;)*) => {
            $(
                #[doc = $title]
                pub const $id: ApiCode = ApiCode { id: stringify!($id), status: $status, title: $title };
            )*
            /// Every record API error code.
            pub const ALL: &[ApiCode] = &[$($id),*];
        };
    }

    api_codes! {
        INVALID_FIELD = 400: "The body names an unknown field, or a query parameter does not fit.";
        INVALID_FIELD_FOR_INSERT_UPDATE = 400: "The body sets a field herald sets itself.";
        REQUIRED_FIELD_MISSING = 400: "A required value is absent or blank.";
        INVALID_TYPE = 400: "A value has the wrong JSON type for its field.";
        STRING_TOO_LONG = 400: "A text value is longer than the field's `length`.";
        INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST = 400: "A picklist value is not one of the field's values.";
        INVALID_EMAIL_ADDRESS = 400: "An email value does not look like an address.";
        INVALID_CROSS_REFERENCE_KEY = 400: "A lookup field's id is not an id of the object it points to.";
        JSON_PARSER_ERROR = 400: "The body is not a JSON object.";
        INVALID_INPUT = 400: "An invoked flow is not an active autolaunched flow, or an input does not fit its variables.";
        MORE_ERRORS = 400: "Counts the problems past the ones listed.";
        INVALID_PROJECT = 400: "A reload found a project folder that does not load; the running version stays.";
        INVALID_SESSION_ID = 401: "No valid token (or webhook secret).";
        INSUFFICIENT_ACCESS = 403: "The user's permission sets do not grant the route's scope.";
        NOT_FOUND = 404: "No such object, record, run, message or webhook.";
        INVALID_STATUS = 409: "The run cannot be retried in its state.";
        SERVER_ERROR = 500: "Something failed inside herald; details are in the log.";
        SERVER_UNAVAILABLE = 503: "herald is at capacity; retry after the given seconds.";
    }
}
