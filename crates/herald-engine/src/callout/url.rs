//! Stage 4 of a callout: the URL, on the named credential's own host and nowhere else, then routed
//! through the sandbox when one is configured.

use crate::Engine;
use herald_flow::PreparedCallout;

impl Engine {
    /// A URL as this process reaches it: through the sandbox when one is configured.
    pub(crate) fn routed(&self, url: &str) -> Result<String, String> {
        let Some(sandbox) = &self.inner.sandbox else { return Ok(url.to_string()) };
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let host = parsed.host_str().ok_or_else(|| format!("{url} has no host"))?;
        let mut routed = sandbox.clone();
        routed.set_path(&format!("{}/{host}{}", sandbox.path().trim_end_matches('/'), parsed.path()));
        routed.set_query(parsed.query());
        Ok(routed.to_string())
    }

    pub(crate) fn target_url(
        &self,
        base: &str,
        host: &str,
        prepared: &PreparedCallout,
    ) -> Result<reqwest::Url, String> {
        let path = &prepared.path;
        if let Some(why) = herald_openapi::path_refusal(path) {
            return Err(format!(
                "{}: the path {path:?} is refused, since it could leave the named credential's base URL: {why}",
                prepared.action
            ));
        }
        let mut url = reqwest::Url::parse(&format!("{base}{path}"))
            .map_err(|e| format!("{}: cannot build a URL from {base}{path}: {e}", prepared.action))?;
        if url.host_str() != Some(host) {
            return Err(format!(
                "{}: the request would go to {:?}, not {host}; refused",
                prepared.action,
                url.host_str()
            ));
        }
        if let Some(sandbox) = &self.inner.sandbox {
            let mut routed = sandbox.clone();
            routed.set_path(&format!("{}/{host}{}", sandbox.path().trim_end_matches('/'), url.path()));
            url = routed;
        }
        if !prepared.query.is_empty() {
            url.query_pairs_mut().extend_pairs(prepared.query.iter());
        }
        Ok(url)
    }
}
