//! herald: a record change becomes an SMS or WhatsApp message in milliseconds.

mod admin;
mod client_cmd;
mod db_cmd;
mod demo;
mod flow_cmd;
mod formula_cmd;
mod runs_cmd;
mod serve;
mod service_cmd;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "herald", version, about = "Record-triggered flows that text your leads in milliseconds")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bundled Kixie example end to end: a temporary database, an in-process sandbox, five leads.
    #[command(after_help = "Example:\n  herald demo")]
    Demo,
    /// Serve the HTTP API and run flows for a project folder.
    #[command(
        after_help = "Example:\n  herald serve --project examples/kixie-welcome-sms --sandbox http://127.0.0.1:8099"
    )]
    Serve {
        /// The project folder (holding herald.toml).
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// Address to listen on (default: [server] listen in herald.toml).
        #[arg(long)]
        listen: Option<String>,
        /// The database: a SQLite file, or a PostgreSQL URL (postgres://user@host/db). Default:
        /// HERALD_DATABASE_URL, else [database] url, else [database] path in herald.toml (relative to
        /// the project).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Send every callout for https://HOST/PATH to URL/HOST/PATH (a `herald sandbox`).
        #[arg(long)]
        sandbox: Option<String>,
    },
    /// Check and debug flows.
    #[command(subcommand)]
    Flow(FlowCommand),
    /// Make a running `herald serve` load its project folder again, without a restart: the new version
    /// is loaded and checked first, then new runs start on it while runs already started (waiting,
    /// retried, recovered) stay on the version they started on. A folder that does not load is
    /// refused with its diagnostics, exit code 1, and the server keeps its version. Sending the server
    /// SIGHUP does the same (the outcome goes to its output). Needs a token ($HERALD_TOKEN) whose
    /// user has the `manage_flows` scope.
    #[command(after_help = "Example:
  export HERALD_URL=http://127.0.0.1:8080 HERALD_TOKEN=hrld_...
  herald reload
  kill -HUP $(pgrep -f 'herald serve')   # the same, by signal")]
    Reload {
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Serve the emulated providers (every provider herald has an emulator for) for tests and demos.
    #[command(after_help = "Example:\n  herald sandbox --listen 127.0.0.1:8099")]
    Sandbox {
        /// Address to listen on (port 0: any free port; the address is printed).
        #[arg(long, default_value = "127.0.0.1:8099")]
        listen: String,
        /// The businessid the emulated Kixie account accepts.
        #[arg(long, env = "HERALD_SANDBOX_KIXIE_BUSINESSID", default_value = "sandbox-business")]
        kixie_businessid: String,
        /// The apikey the emulated Kixie account accepts (a test value, never a real key).
        #[arg(
            long,
            env = "HERALD_SANDBOX_KIXIE_APIKEY",
            default_value = "sandbox-apikey",
            hide_default_value = false
        )]
        kixie_apikey: String,
        /// A JSON file of sandbox options (faults per host, receipts, accounts); see docs/sandbox.md.
        /// It holds the Kixie account too: with it, the two Kixie flags are ignored.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Manage secret values of external credentials.
    #[command(subcommand)]
    Credential(CredentialCommand),
    /// Measure speed to lead: herald and the sandbox as processes, a fixed-rate and a max-rate load.
    #[command(
        after_help = "Examples:\n  herald bench --rate 1000 --leads 10000 --peer node-red --markdown bench.md\n  herald bench --scenario bulk-8x8 --recipients 100000\n  herald bench --postgres postgres://root@127.0.0.1:5432/postgres --nodes 3 --startup-runs 0"
    )]
    Bench {
        /// kixie, 8x8-sms, or bulk-8x8 (one campaign texting --recipients Leads in 8x8 batches; the
        /// rate, leads and concurrency options do not apply to it).
        #[arg(long, default_value = "kixie")]
        scenario: String,
        /// bulk-8x8 only: the Leads the campaign texts (default 100,000).
        #[arg(long)]
        recipients: Option<usize>,
        /// Run the same load against a peer in the same run (node-red; see bench/peers/).
        #[arg(long)]
        peer: Option<String>,
        /// Leads per second of the fixed-rate phase; 0 skips it.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// Leads of the fixed-rate phase.
        #[arg(long, default_value_t = 10_000)]
        leads: usize,
        /// Connections of the max-rate phase; 0 skips it.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Leads of the max-rate phase.
        #[arg(long, default_value_t = 20_000)]
        max_leads: usize,
        /// Fresh starts of `herald serve` to time.
        #[arg(long, default_value_t = 5)]
        startup_runs: usize,
        /// How long the emulated provider takes to answer, in milliseconds, for herald and the peer
        /// alike (real providers answer in 100-400 ms); 0 answers at once.
        #[arg(long, default_value_t = 0)]
        provider_latency_ms: u64,
        /// Also run herald on PostgreSQL and compare it with SQLite in the same run: a scratch
        /// database is created on this server (postgres://user@host:port/db; its own database is only
        /// used to connect) and dropped after. Example: --postgres postgres://root@127.0.0.1:5432/postgres
        #[arg(long, value_name = "SERVER_URL")]
        postgres: Option<String>,
        /// With --postgres: run N `herald serve` nodes on the one scratch database (each on its own
        /// port, all calling the one sandbox) and send the leads to them round robin. The tables name
        /// the target "herald on PostgreSQL, N nodes"; its CPU per lead is the nodes' sum, its peak RSS
        /// the largest node's, and the PostgreSQL server's CPU per lead is shown beside it.
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
        nodes: u16,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Write the Markdown report here instead of standard output.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// The repository root (holding examples/); found from the current folder when absent.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Register and inspect external services (OpenAPI files) and HTTP callouts.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Manage API users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The vault that encrypts secrets: its keys, their rotation and its status.
    #[command(subcommand)]
    Vault(VaultCommand),
    /// Evaluate formulas.
    #[command(subcommand)]
    Formula(FormulaCommand),
    /// Inspect SMS encodings and segments.
    #[command(subcommand)]
    Sms(SmsCommand),
    /// Normalize phone numbers.
    #[command(subcommand)]
    Phone(PhoneCommand),
    /// Failed, waiting and unknown runs: list them, show one, run one again.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// The message ledger: every outbound message, its status history and receipts.
    #[command(subcommand)]
    Messages(MessagesCommand),
    /// Webhook endpoints that receive delivery receipts and inbound messages.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// herald's database: copy it between SQLite and PostgreSQL, bring its schema up to date.
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Subcommand)]
enum DbCommand {
    /// Copy herald's state from one database into another, empty one (SQLite <-> PostgreSQL).
    ///
    /// Every record, run, message, receipt, consent, user, token, secret, key and project version is
    /// copied: a SQLite file into PostgreSQL when a second node joins, or a PostgreSQL database back
    /// into a file. Ids and orders are kept (the registered live nodes are not); prints the rows copied per
    /// table. Stop the servers that use the source first (it is read a page at a time, not as one
    /// snapshot). A target that already holds herald's data is refused and left as it is. Secrets
    /// are copied still encrypted: the target needs the same master key (the key file is not moved).
    #[command(after_help = "Examples:
  herald db copy --from herald.db --to postgres://herald:secret@db.internal:5432/herald
  herald db copy --from \"$HERALD_DATABASE_URL\" --to herald-backup.db

A URL's password is never printed. Each database is brought up to date when it is opened.")]
    Copy {
        /// The database to copy: a SQLite file, or a postgres:// (postgresql://) URL.
        #[arg(long)]
        from: PathBuf,
        /// The database to copy into: a new SQLite file, or a URL of an empty PostgreSQL database.
        #[arg(long)]
        to: PathBuf,
    },
    /// Bring the database's schema up to date, or with --check say whether it is.
    ///
    /// Any command that opens the database migrates it too; this one does only that, before a new
    /// herald is started on a database several nodes share, for instance. With --check nothing is
    /// changed: exit code 0 when the schema is up to date, 1 when migrations are pending (the message
    /// says how many).
    #[command(after_help = "Examples:
  herald db migrate --project examples/kixie-welcome-sms
  herald db migrate --db postgres://herald@db.internal/herald --check")]
    Migrate {
        /// Only report whether migrations are pending; change nothing.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        location: DbLocation,
    },
}

/// The database of a `herald db` command: `--db`, else the project's.
#[derive(clap::Args)]
struct DbLocation {
    /// The project folder (holding herald.toml), whose database is used when --db is absent.
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// A SQLite file or a postgres:// URL (default: HERALD_DATABASE_URL, else [database] url or path
    /// in herald.toml).
    #[arg(long)]
    db: Option<PathBuf>,
}

#[derive(Subcommand)]
enum RunsCommand {
    /// List runs, newest first.
    #[command(after_help = "Example:
  herald runs list --status failed --status unknown --project examples/kixie-welcome-sms")]
    List {
        /// ready, running, waiting, finished, failed, unknown or skipped; repeatable; all when absent.
        #[arg(long)]
        status: Vec<String>,
        /// At most this many runs.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: ProjectDb,
    },
    /// Show one run: status, fault, every element it ran, and its messages.
    #[command(after_help = "Example:
  herald runs show run_Xy12 --project examples/kixie-welcome-sms")]
    Show {
        /// The run's id (run_...), as `herald runs list` or the records API shows it.
        id: String,
        /// The run and its messages as one JSON document.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: ProjectDb,
    },
    /// Run a failed, unknown or finished run again from where it stopped (or from an element); a
    /// waiting run is retried at once. A running `herald serve` on the same database takes it up when
    /// it next starts; use `POST /api/v1/runs/ID/retry` to retry on a running server.
    #[command(after_help = "Example:
  herald runs retry run_Xy12 --from-element Send_SMS --project examples/kixie-welcome-sms")]
    Retry {
        /// The run's id (run_...).
        id: String,
        /// Start again at this element of the flow instead of where the run stopped.
        #[arg(long)]
        from_element: Option<String>,
        #[command(flatten)]
        location: ProjectDb,
    },
    /// Make a waiting run due now: a scheduled path (still checked against its record first), a Wait
    /// element, a retry or a daily limit. A running `herald serve` on the same database takes it
    /// within seconds; `POST /api/v1/runs/ID/wake` wakes it on a running server at once.
    #[command(after_help = "Example:
  herald runs list --status waiting --project examples/kixie-welcome-sms
  herald runs wake run_Xy12 --project examples/kixie-welcome-sms")]
    Wake {
        /// The run's id (run_...).
        id: String,
        #[command(flatten)]
        location: ProjectDb,
    },
}

#[derive(Subcommand)]
enum MessagesCommand {
    /// List ledger rows, newest first.
    #[command(after_help = "Example:
  herald messages list --status undelivered --project examples/8x8-sms")]
    List {
        /// Only the messages of this run.
        #[arg(long)]
        run: Option<String>,
        /// Only the messages to this phone number, in E.164 (+14155550100).
        #[arg(long)]
        destination: Option<String>,
        /// Only messages in this status: pending, unknown, queued, sent, delivered, undelivered, read,
        /// rejected or failed.
        #[arg(long)]
        status: Option<String>,
        /// At most this many messages.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: ProjectDb,
    },
}

#[derive(Subcommand)]
enum WebhookCommand {
    /// Create (or replace) a webhook endpoint's secret; it is printed once and only its hash is kept.
    /// Configure the provider to send it as `Authorization: Bearer <secret>` or in the URL as
    /// `?secret=<secret>`. Twilio endpoints need none: they check X-Twilio-Signature.
    #[command(after_help = "Example:
  herald webhook secret EightByEight_Events --project examples/8x8-sms")]
    Secret {
        /// The webhook endpoint's name (webhooks/NAME.yaml).
        name: String,
        #[command(flatten)]
        location: ProjectDb,
    },
}

#[derive(Subcommand)]
enum FlowCommand {
    /// Load a project and report every problem with file:line:column.
    #[command(after_help = "Example:\n  herald flow validate examples/kixie-welcome-sms")]
    Validate {
        /// The project folder (holding herald.toml).
        project: PathBuf,
    },
    /// Run an autolaunched flow on a running server, as a client of Salesforce's REST API would
    /// (POST /services/data/v60.0/actions/custom/flow/FLOW): prints the output variables, then "All
    /// done.", or the errors and exit code 1 when the interview did not succeed. The token
    /// ($HERALD_TOKEN) must belong to a user whose permission sets grant the `run_flows` scope.
    #[command(after_help = "Example:
  export HERALD_URL=http://127.0.0.1:8080 HERALD_TOKEN=$(herald token create flowclient --project examples/8x8-sms)
  herald flow run Send_SMS_8x8 --input recipient=+6591234567 --input text=Hello")]
    Run {
        /// The autolaunched flow's API name (flows/NAME.yaml on the server).
        flow: String,
        /// A value for an input variable, as NAME=VALUE (repeatable), read as for `flow debug`: JSON
        /// when it parses, else text as written.
        #[arg(long = "input", value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        #[command(flatten)]
        server: ServerUrl,
    },
    /// Run one flow once, really performing its effects, and show every element: a record-triggered
    /// flow on --record, an autolaunched flow (no `trigger:`) from --input values.
    #[command(
        after_help = "Examples:\n  herald flow debug examples/kixie-welcome-sms Lead_Welcome_SMS \\\n    --record '{\"LastName\":\"Ng\",\"FirstName\":\"Ada\",\"Phone\":\"+14155550100\"}' --sandbox http://127.0.0.1:8099\n  herald flow debug examples/8x8-sms Send_SMS_8x8 \\\n    --input recipient=+6591234567 --input text=Hello --sandbox http://127.0.0.1:8099\n  herald flow debug my-project Lead_Status_Changed --record-id 00Q1a2B3c4D5e6F \\\n    --prior '{\"Status\":\"Open\"}' --rollback --sandbox http://127.0.0.1:8099"
    )]
    Debug {
        /// The project folder (holding herald.toml).
        project: PathBuf,
        /// The flow's API name (flows/NAME.yaml).
        flow: String,
        /// The triggering record's fields, as JSON (record-triggered flows only).
        #[arg(long)]
        record: Option<String>,
        /// A value for an input variable of an autolaunched flow, as NAME=VALUE (repeatable). VALUE is
        /// read as JSON (`3`, `true`, `"42"`, `["a","b"]`); anything that is not valid JSON is taken as
        /// text as written, so `--input text=Hello` needs no quotes.
        #[arg(long = "input", value_name = "NAME=VALUE")]
        inputs: Vec<String>,
        /// Send every callout for https://HOST/PATH to URL/HOST/PATH (a `herald sandbox`) instead of
        /// the real provider.
        #[arg(long)]
        sandbox: Option<String>,
        /// The database with the credentials and users, and where the run writes: a SQLite file or a
        /// PostgreSQL URL (default: HERALD_DATABASE_URL, else [database] url, else [database] path in
        /// herald.toml, relative to the project).
        #[arg(long)]
        db: Option<PathBuf>,
        /// Run even when the record does not meet the entry condition.
        #[arg(long)]
        ignore_entry_condition: bool,
        /// Run as this user (default: the automation user of herald.toml).
        #[arg(long = "as")]
        as_user: Option<String>,
        /// Run on this existing record of the flow's object, from the database (record-triggered
        /// flows); with --record, those fields are changed for this run on top of the stored values.
        #[arg(long)]
        record_id: Option<String>,
        /// The values fields had before the update being debugged, as JSON (`{"Status":"Open"}`); the
        /// other fields had their current values. For "only when a record is updated to meet the
        /// condition", ISCHANGED and PRIORVALUE. With --record-id and --record but no --prior, the
        /// stored record is the prior.
        #[arg(long)]
        prior: Option<String>,
        /// Salesforce's "Run flow in rollback mode": the run uses a copy of the database that is
        /// deleted after, so no record, run or message it writes is kept; callouts are still made (to
        /// --sandbox when given).
        #[arg(long)]
        rollback: bool,
    },
}

/// Where a command that talks to a running server finds it.
#[derive(clap::Args)]
struct ServerUrl {
    /// The running `herald serve` (default: $HERALD_URL, else http://127.0.0.1:8080). The API token
    /// is read from $HERALD_TOKEN, never from the command line.
    #[arg(long)]
    url: Option<String>,
}

#[derive(Subcommand)]
enum CredentialCommand {
    /// Store one parameter of a principal, encrypted; the value is read from standard input.
    #[command(
        after_help = "Example:\n  printf %s \"$KIXIE_APIKEY\" | herald credential set Kixie_API_Auth Kixie_Principal apikey --project examples/kixie-welcome-sms"
    )]
    Set {
        /// The external credential (credentials/NAME.yaml).
        external_credential: String,
        /// One of its principals.
        principal: String,
        /// One of the principal's parameters (apikey, username, client_secret, ...).
        parameter: String,
        /// The project folder (holding herald.toml).
        #[arg(long, default_value = ".")]
        project: PathBuf,
        /// The database: a SQLite file, or a PostgreSQL URL (postgres://user@host/db). Default:
        /// HERALD_DATABASE_URL, else [database] url, else [database] path in herald.toml (relative to
        /// the project).
        #[arg(long)]
        db: Option<PathBuf>,
        /// For a per-user principal: the user the value belongs to.
        #[arg(long)]
        user: Option<String>,
    },
}

/// Where a project's runtime state lives: the project folder and, optionally, another database.
#[derive(clap::Args)]
struct ProjectDb {
    /// The project folder (holding herald.toml).
    #[arg(long, default_value = ".")]
    project: PathBuf,
    /// The database: a SQLite file, or a PostgreSQL URL (postgres://user@host/db). Default:
    /// HERALD_DATABASE_URL, else [database] url, else [database] path in herald.toml (relative to the
    /// project).
    #[arg(long)]
    db: Option<PathBuf>,
}

#[derive(Subcommand)]
enum ServiceCommand {
    /// Register an OpenAPI file as an external service: copies the spec into services/ and writes
    /// services/NAME.yaml, only if the project loads with them (else prints why and writes nothing).
    #[command(
        after_help = "Example:\n  herald service import sms_api.json --name CPaaSSMS --credential X8x8_SMS_API --operation Send-Sms-Single --project my-project"
    )]
    Import {
        /// The OpenAPI file (3.0, 3.1 or Swagger 2.0; JSON or YAML).
        spec: PathBuf,
        /// The external service's name, as flows call it (NAME.Operation).
        #[arg(long)]
        name: String,
        /// The named credential the service calls through.
        #[arg(long)]
        credential: String,
        /// An operationId to import; repeat it; all operations when absent.
        #[arg(long = "operation")]
        operations: Vec<String>,
        /// One of the spec's server URLs (a region).
        #[arg(long)]
        server: Option<String>,
        /// The project folder to register the service in.
        #[arg(long, default_value = ".")]
        project: PathBuf,
    },
    /// List a service's operations: inputs, outputs and the generated type names.
    #[command(after_help = "Example:\n  herald service show examples/8x8-sms CPaaSSMS")]
    Show {
        /// The project folder (holding herald.toml).
        project: PathBuf,
        /// The external service or HTTP callout (services/NAME.yaml).
        name: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user holding permission sets.
    #[command(
        after_help = "Example:\n  herald user add webform --permission-set Herald_API_User --permission-set Kixie_Integration_User --project examples/kixie-welcome-sms"
    )]
    Add {
        /// The new user's name.
        name: String,
        /// A permission set to hold (permissions/NAME.yaml); repeat it for more.
        #[arg(long = "permission-set", required = true)]
        permission_sets: Vec<String>,
        #[command(flatten)]
        location: ProjectDb,
    },
    /// Deactivate a user: its API tokens stop working at once.
    #[command(after_help = "Example:\n  herald user deactivate webform --project examples/kixie-welcome-sms")]
    Deactivate {
        /// The user's name.
        name: String,
        #[command(flatten)]
        location: ProjectDb,
    },
    /// Set (or replace) a user's console password, read from standard input.
    ///
    /// At a terminal the password is asked for twice and not echoed; otherwise the first line of
    /// standard input is the password. Only its Argon2id hash is stored. The user then signs in to
    /// the console at /console/login of `herald serve` (docs/console.md).
    #[command(
        after_help = "Examples:\n  herald user password ada --project examples/kixie-welcome-sms\n  printf '%s\\n' \"$PASSWORD\" | herald user password ada --project examples/kixie-welcome-sms"
    )]
    Password {
        /// The user's name.
        name: String,
        #[command(flatten)]
        location: ProjectDb,
    },
    /// List users and their permission sets.
    #[command(after_help = "Example:\n  herald user list --project examples/kixie-welcome-sms")]
    List {
        #[command(flatten)]
        location: ProjectDb,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a user; it is printed once and only its hash is kept.
    #[command(after_help = "Example:\n  herald token create webform --project examples/kixie-welcome-sms")]
    Create {
        /// The user the token acts as.
        user: String,
        #[command(flatten)]
        location: ProjectDb,
    },
    /// List a user's API tokens: id, when created, and whether revoked (never a token or its hash).
    #[command(after_help = "Example:\n  herald token list webform --project examples/kixie-welcome-sms")]
    List {
        /// The user whose tokens to list (active or deactivated).
        user: String,
        #[command(flatten)]
        location: ProjectDb,
    },
    /// Revoke an API token by its id (`tok_…`, from `herald token create` or `herald token list`): it
    /// is refused from the next request on, by every server on the database.
    #[command(
        after_help = "Example:\n  herald token revoke tok_3kTqV9wXbYz8aLmN --project examples/kixie-welcome-sms"
    )]
    Revoke {
        /// The token's id (not the token itself).
        id: String,
        #[command(flatten)]
        location: ProjectDb,
    },
}

#[derive(Subcommand)]
enum VaultCommand {
    /// Rotate the master key, also while `herald serve` runs on the database: a new master key (a new
    /// key file, or HERALD_NEW_MASTER_KEY), a new data key, and every secret re-encrypted under it in
    /// small batches. Running servers keep working with the old key; those that read the key file
    /// switch to the new one within seconds, and the old key is retired once no server uses it.
    #[command(after_help = "Examples:
  herald vault rotate-key --project examples/kixie-welcome-sms
  HERALD_MASTER_KEY=$OLD HERALD_NEW_MASTER_KEY=$(openssl rand -base64 32) herald vault rotate-key --project my-project

With a key file, the new key is written to herald.key.new first and renamed over herald.key once the
database is committed; the command waits up to 20 s for the running servers to switch, then reports
whether the old key is retired. With HERALD_MASTER_KEY, restart every herald process with the new key:
the old key keeps working until the last server using it is gone, then the servers retire it.
`herald vault status` shows where a rotation stands.")]
    RotateKey {
        #[command(flatten)]
        location: ProjectDb,
    },
    /// Show the vault: the master key in use (its fingerprint, never the key), the data keys and how
    /// many secrets each seals, the master keys and the running servers that use them, whether a
    /// rotation is still finishing, and every secret that cannot be opened.
    #[command(after_help = "Example:
  herald vault status --project examples/kixie-welcome-sms --json")]
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        location: ProjectDb,
    },
}

#[derive(Subcommand)]
enum FormulaCommand {
    /// Evaluate a formula and print {"type": ..., "value": ...}.
    #[command(
        after_help = "Example:\n  herald formula eval 'IF(ISBLANK({!$Record.MobilePhone}), {!$Record.Phone}, {!$Record.MobilePhone})' --record '{\"Phone\":\"+1415\"}'"
    )]
    Eval {
        /// The formula; it may start with a minus (`'-3 + 1'`).
        #[arg(allow_hyphen_values = true)]
        expression: String,
        /// The record `$Record` refers to, as a JSON object of field values.
        #[arg(long)]
        record: Option<String>,
        /// A variable as NAME=JSON; repeatable.
        #[arg(long = "var")]
        vars: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SmsCommand {
    /// Print the encoding, segment count and units of a text.
    #[command(after_help = "Example:\n  herald sms inspect 'Hi Zoë, thanks!'")]
    Inspect {
        /// The message text; it may start with a minus (`'-fine print'`).
        #[arg(allow_hyphen_values = true)]
        text: String,
    },
}

#[derive(Subcommand)]
enum PhoneCommand {
    /// Print a number in E.164, or exit 2 with the reason.
    #[command(after_help = "Example:\n  herald phone normalize '(415) 555-0100' --country US")]
    Normalize {
        /// The number as typed, in any common format.
        #[arg(allow_hyphen_values = true)]
        number: String,
        /// The country of a national number (ISO 3166 code: US, GB, SG, ...).
        #[arg(long)]
        country: Option<String>,
    },
}

// Many small allocations cross threads (requests, JSON values, database writes): mimalloc's
// per-thread free lists cost less CPU per lead than glibc's arenas (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `herald ... | head` must end quietly like any Unix tool, not panic on a closed pipe: restore the
    // default SIGPIPE action that the Rust runtime replaces with "ignore".
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("HERALD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    // reqwest is built without a default TLS backend; ring is the one provider herald ships.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo => runtime()?.block_on(demo::run()),
        Command::Serve { project, listen, db, sandbox } => {
            runtime()?.block_on(serve::serve(project, listen, db, sandbox))
        }
        Command::Sandbox { listen, kixie_businessid, kixie_apikey, config } => {
            runtime()?.block_on(serve::sandbox(listen, kixie_businessid, kixie_apikey, config))
        }
        Command::Runs(RunsCommand::List { status, limit, json, location }) => {
            runtime()?.block_on(runs_cmd::list(&location.project, location.db, &status, limit, json))
        }
        Command::Runs(RunsCommand::Show { id, json, location }) => {
            runtime()?.block_on(runs_cmd::show(&location.project, location.db, &id, json))
        }
        Command::Runs(RunsCommand::Retry { id, from_element, location }) => {
            runtime()?.block_on(runs_cmd::retry(&location.project, location.db, &id, from_element.as_deref()))
        }
        Command::Runs(RunsCommand::Wake { id, location }) => {
            runtime()?.block_on(runs_cmd::wake(&location.project, location.db, &id))
        }
        Command::Messages(MessagesCommand::List { run, destination, status, limit, json, location }) => {
            let filter =
                herald_store::MessageFilter { run_id: run, destination, status, limit, ..Default::default() };
            runtime()?.block_on(runs_cmd::messages(&location.project, location.db, filter, json))
        }
        Command::Webhook(WebhookCommand::Secret { name, location }) => {
            runtime()?.block_on(runs_cmd::webhook_secret(&location.project, location.db, &name))
        }
        Command::Db(DbCommand::Copy { from, to }) => runtime()?.block_on(db_cmd::copy(&from, &to)),
        Command::Db(DbCommand::Migrate { check, location }) => {
            match db_cmd::location(&location.project, location.db) {
                Ok(database) => runtime()?.block_on(db_cmd::migrate(&database, check)),
                Err(code) => Ok(code),
            }
        }
        Command::Flow(FlowCommand::Validate { project }) => Ok(flow_cmd::validate(&project)),
        Command::Reload { server } => runtime()?.block_on(client_cmd::reload(server.url)),
        Command::Flow(FlowCommand::Run { flow, inputs, server }) => {
            runtime()?.block_on(client_cmd::flow_run(server.url, &flow, &inputs))
        }
        Command::Flow(FlowCommand::Debug {
            project,
            flow,
            record,
            inputs,
            sandbox,
            db,
            ignore_entry_condition,
            as_user,
            record_id,
            prior,
            rollback,
        }) => {
            let options = flow_cmd::DebugOptions {
                sandbox,
                db,
                ignore_entry_condition,
                as_user,
                inputs,
                record_id,
                prior,
                rollback,
            };
            runtime()?.block_on(flow_cmd::debug(&project, &flow, record.as_deref(), options))
        }
        Command::Credential(CredentialCommand::Set {
            external_credential,
            principal,
            parameter,
            project,
            db,
            user,
        }) => runtime()?.block_on(flow_cmd::set_credential(
            &project,
            db,
            &external_credential,
            &principal,
            &parameter,
            user.as_deref(),
        )),
        Command::Bench {
            scenario,
            recipients,
            peer,
            rate,
            leads,
            concurrency,
            max_leads,
            startup_runs,
            provider_latency_ms,
            postgres,
            nodes,
            json,
            markdown,
            root,
        } => runtime()?.block_on(async {
            if let Some(server) = &postgres
                && !herald_store::postgres::is_url(server)
            {
                anyhow::bail!(
                    "--postgres takes a PostgreSQL server URL (postgres://user@host:port/db), not {}",
                    serve::shown(std::path::Path::new(server))
                );
            }
            let report = herald_bench::run(herald_bench::BenchOptions {
                herald: Some(std::env::current_exe()?),
                root,
                scenario,
                peer: peer.as_deref().map(herald_bench::Peer::parse).transpose()?,
                rate: (rate > 0).then_some(rate),
                fixed_leads: leads,
                concurrency: (concurrency > 0).then_some(concurrency),
                max_leads,
                startup_runs,
                recipients,
                provider_latency: std::time::Duration::from_millis(provider_latency_ms),
                postgres,
                nodes: usize::from(nodes),
                // A URL's password never reaches the report.
                command: Some(
                    std::env::args()
                        .map(|arg| herald_store::postgres::masked(&arg))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                ..Default::default()
            })
            .await?;
            if let Some(path) = json {
                std::fs::write(path, report.to_json())?;
            }
            match markdown {
                Some(path) => std::fs::write(path, report.to_markdown())?,
                None => print!("{}", report.to_markdown()),
            }
            anyhow::Ok(ExitCode::SUCCESS)
        }),
        Command::Service(ServiceCommand::Import { spec, name, credential, operations, server, project }) => {
            service_cmd::import(&spec, &name, &credential, &operations, server.as_deref(), &project)
        }
        Command::Service(ServiceCommand::Show { project, name }) => service_cmd::show(&project, &name),
        Command::User(UserCommand::Add { name, permission_sets, location }) => {
            runtime()?.block_on(admin::add_user(&location.project, location.db, &name, &permission_sets))
        }
        Command::User(UserCommand::Deactivate { name, location }) => {
            runtime()?.block_on(admin::deactivate_user(&location.project, location.db, &name))
        }
        Command::User(UserCommand::Password { name, location }) => {
            runtime()?.block_on(admin::set_password(&location.project, location.db, &name))
        }
        Command::User(UserCommand::List { location }) => {
            runtime()?.block_on(admin::list_users(&location.project, location.db))
        }
        Command::Token(TokenCommand::Create { user, location }) => {
            runtime()?.block_on(admin::create_token(&location.project, location.db, &user))
        }
        Command::Token(TokenCommand::List { user, location }) => {
            runtime()?.block_on(admin::list_tokens(&location.project, location.db, &user))
        }
        Command::Token(TokenCommand::Revoke { id, location }) => {
            runtime()?.block_on(admin::revoke_token(&location.project, location.db, &id))
        }
        Command::Vault(VaultCommand::RotateKey { location }) => {
            runtime()?.block_on(admin::rotate_key(&location.project, location.db))
        }
        Command::Vault(VaultCommand::Status { json, location }) => {
            runtime()?.block_on(admin::vault_status(&location.project, location.db, json))
        }
        Command::Formula(FormulaCommand::Eval { expression, record, vars }) => {
            Ok(formula_cmd::eval(&expression, record.as_deref(), &vars))
        }
        Command::Sms(SmsCommand::Inspect { text }) => {
            println!("{}", herald_sms::inspect(&text).to_json_line());
            Ok(ExitCode::SUCCESS)
        }
        Command::Phone(PhoneCommand::Normalize { number, country }) => {
            match herald_sms::normalize_e164(&number, country.as_deref()) {
                Ok(e164) => {
                    println!("{}", serde_json::json!({ "e164": e164 }));
                    Ok(ExitCode::SUCCESS)
                }
                Err(error) => {
                    eprintln!("error: {error}");
                    Ok(ExitCode::from(2))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_takes_the_bulk_campaign_s_recipients() {
        let cli = Cli::try_parse_from(["herald", "bench", "--scenario", "bulk-8x8", "--recipients", "5000"])
            .unwrap();
        let Command::Bench { scenario, recipients, .. } = cli.command else { panic!("not bench") };
        assert_eq!((scenario.as_str(), recipients), ("bulk-8x8", Some(5_000)));
        let cli = Cli::try_parse_from(["herald", "bench"]).unwrap();
        assert!(matches!(cli.command, Command::Bench { recipients: None, .. }));
        assert!(Cli::try_parse_from(["herald", "bench", "--recipients", "many"]).is_err());
    }

    #[test]
    fn bench_takes_a_number_of_nodes_of_at_least_one() {
        let nodes = |args: &[&str]| {
            let cli = Cli::try_parse_from([&["herald", "bench"], args].concat())?;
            let Command::Bench { nodes, .. } = cli.command else { panic!("not bench") };
            Ok::<u16, clap::Error>(nodes)
        };
        assert_eq!(nodes(&[]).unwrap(), 1);
        assert_eq!(nodes(&["--postgres", "postgres://root@127.0.0.1/postgres", "--nodes", "3"]).unwrap(), 3);
        assert!(nodes(&["--nodes", "0"]).is_err());
        assert!(nodes(&["--nodes", "two"]).is_err());
    }

    #[test]
    fn every_argument_of_every_command_has_a_description_and_every_command_an_example() {
        fn check(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", command.get_name());
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    missing.push(format!("{path}: {id} has no description"));
                }
            }
            let subcommands: Vec<_> = command.get_subcommands().collect();
            if subcommands.is_empty() && command.get_after_help().is_none() {
                missing.push(format!("{path}: no example"));
            }
            for sub in subcommands {
                check(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        check(&<Cli as clap::CommandFactory>::command(), "", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn free_text_arguments_may_start_with_a_minus() {
        let cli = Cli::try_parse_from(["herald", "formula", "eval", "-3 + 1"]).unwrap();
        let Command::Formula(FormulaCommand::Eval { expression, .. }) = cli.command else {
            panic!("not eval")
        };
        assert_eq!(expression, "-3 + 1");
        // Options before and after the formula are still options.
        let cli = Cli::try_parse_from(["herald", "formula", "eval", "--var", "n=2", "-n", "--record", "{}"])
            .unwrap();
        let Command::Formula(FormulaCommand::Eval { expression, record, vars }) = cli.command else {
            panic!("not eval")
        };
        assert_eq!(
            (expression.as_str(), record.as_deref(), vars),
            ("-n", Some("{}"), vec!["n=2".to_string()])
        );
        let cli = Cli::try_parse_from(["herald", "sms", "inspect", "-fine print"]).unwrap();
        assert!(matches!(cli.command, Command::Sms(SmsCommand::Inspect { text }) if text == "-fine print"));
        let cli = Cli::try_parse_from(["herald", "sms", "inspect", "--", "--help"]).unwrap();
        assert!(matches!(cli.command, Command::Sms(SmsCommand::Inspect { text }) if text == "--help"));
        let cli = Cli::try_parse_from(["herald", "phone", "normalize", "-415-555-0100", "--country", "US"])
            .unwrap();
        assert!(
            matches!(cli.command, Command::Phone(PhoneCommand::Normalize { number, .. }) if number == "-415-555-0100")
        );
    }
}
