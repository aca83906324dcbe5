//! Commands that talk to a running `herald serve` over its HTTP API instead of opening the database:
//! `herald flow run` (an autolaunched flow, through the same route any client of Salesforce's REST API
//! would use) and `herald reload`. They find the server in `--url` or `HERALD_URL` and authenticate
//! with the API token in `HERALD_TOKEN`: a token on the command line would show in `ps` and in shell
//! history, so there is no flag for it.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::process::ExitCode;

/// The environment variable holding the server's address.
pub const URL_ENV: &str = "HERALD_URL";
/// The environment variable holding the API token (`herald token create USER`).
pub const TOKEN_ENV: &str = "HERALD_TOKEN";
/// The server herald listens on when `[server] listen` is left as it is.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// The API version in the paths of Salesforce's REST API that herald answers.
const API_VERSION: &str = "v60.0";

/// A client for one server: its address and the token's `Authorization` header.
pub struct Server {
    url: String,
    http: reqwest::Client,
}

impl Server {
    pub fn from_env(url: Option<String>) -> Result<Server> {
        let url = url
            .or_else(|| std::env::var(URL_ENV).ok().filter(|u| !u.trim().is_empty()))
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty()).with_context(|| {
            format!(
                "{TOKEN_ENV} is not set: create a token with `herald token create USER --project DIR` for a user whose permission sets grant the scope needed, then `export {TOKEN_ENV}=hrld_...`"
            )
        })?;
        let mut headers = reqwest::header::HeaderMap::new();
        let mut value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .with_context(|| format!("{TOKEN_ENV} holds characters a token never has"))?;
        value.set_sensitive(true);
        headers.insert(reqwest::header::AUTHORIZATION, value);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(std::time::Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Server { url: url.trim_end_matches('/').to_string(), http })
    }

    /// POSTs `body` to `path`; the status and the answer as JSON (`null` when it is not JSON).
    pub async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let url = format!("{}{path}", self.url);
        let answer = self
            .http
            .post(&url)
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach herald at {} (set --url or {URL_ENV})", self.url))?;
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }
}

/// The API's error answer (`[{errorCode, message, fields}]`), one line each, with a hint for the
/// statuses a user can fix.
pub fn print_api_errors(status: u16, answer: &Value) {
    let entries = answer.as_array().cloned().unwrap_or_default();
    if entries.is_empty() {
        eprintln!("error: herald answered HTTP {status}");
    }
    for entry in entries {
        let code = entry["errorCode"].as_str().unwrap_or("ERROR");
        let message = entry["message"].as_str().unwrap_or("");
        eprintln!("error: {code}: {message}");
    }
    match status {
        401 => eprintln!(
            "hint: {TOKEN_ENV} is not a valid token of an active user; create one with `herald token create USER`"
        ),
        403 => eprintln!(
            "hint: give the token's user a permission set whose api_scopes grant this route's scope"
        ),
        _ => {}
    }
}

/// `herald flow run FLOW --input NAME=VALUE ...`: one interview of an autolaunched flow on the server.
pub async fn flow_run(url: Option<String>, flow: &str, inputs: &[String]) -> Result<ExitCode> {
    let inputs = crate::flow_cmd::parse_inputs(inputs)?;
    if flow.is_empty() || flow.contains('/') {
        bail!("`{flow}` is not a flow's API name");
    }
    let server = Server::from_env(url)?;
    let path = format!("/services/data/{API_VERSION}/actions/custom/flow/{flow}");
    let (status, answer) = server.post(&path, &json!({"inputs": [inputs]})).await?;
    if status != 200 {
        print_api_errors(status, &answer);
        return Ok(ExitCode::FAILURE);
    }
    let Some(result) = answer.as_array().and_then(|results| results.first()) else {
        bail!("herald answered 200 without a result: {answer}");
    };
    let success = result["isSuccess"].as_bool() == Some(true);
    if let Some(outputs) = result["outputValues"].as_object()
        && !outputs.is_empty()
    {
        println!("Output variables:");
        for (name, value) in outputs {
            let shown = match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            println!("  {name} = {shown}");
        }
    }
    for error in result["errors"].as_array().into_iter().flatten() {
        let code = error["statusCode"].as_str().unwrap_or("ERROR");
        eprintln!("error: {code}: {}", error["message"].as_str().unwrap_or(""));
    }
    if success {
        println!("All done.");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("The flow failed.");
        Ok(ExitCode::FAILURE)
    }
}

/// `herald reload`: the server loads its project folder again (POST /api/v1/project/reload).
pub async fn reload(url: Option<String>) -> Result<ExitCode> {
    let server = Server::from_env(url)?;
    let (status, answer) = server.post("/api/v1/project/reload", &json!({})).await?;
    if status != 200 {
        if status == 400
            && let Some(entry) = answer.as_array().and_then(|entries| entries.first())
            && entry["errorCode"] == herald_codes::api::INVALID_PROJECT.id()
        {
            eprintln!("{}", entry["message"].as_str().unwrap_or(""));
            eprintln!("Reload refused: the server keeps running the version it had.");
            return Ok(ExitCode::FAILURE);
        }
        print_api_errors(status, &answer);
        return Ok(ExitCode::FAILURE);
    }
    for warning in answer["warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", warning.as_str().unwrap_or(""));
    }
    let version = answer["version"].as_i64().map_or_else(|| "?".to_string(), |v| v.to_string());
    let hash: String = answer["hash"].as_str().unwrap_or("").chars().take(12).collect();
    if answer["changed"] == true {
        let flows = answer["flows"].as_array().map_or(0, Vec::len);
        println!(
            "Reloaded: new runs start on project version {version} ({hash}), {flows} flow{}; runs already started stay on theirs.",
            if flows == 1 { "" } else { "s" }
        );
    } else {
        println!("Unchanged: the folder holds project version {version} ({hash}), which is running.");
    }
    Ok(ExitCode::SUCCESS)
}
