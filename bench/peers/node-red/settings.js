// Node-RED settings for the speed-to-lead benchmark peer: loopback only, no editor or admin API, no
// telemetry, info logging (the harness waits for "Started flows"). Port and flow file come from the
// command line (see run.sh); SANDBOX_URL from the environment (read by the function node).
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: process.env.NODE_RED_PORT || 1880,
    httpAdminRoot: false,
    flowFilePretty: true,
    // The flow has no credentials; do not generate a key for them.
    credentialSecret: false,
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false, updateNotification: false },
    logging: { console: { level: "info", metrics: false, audit: false } },
    functionExternalModules: false,
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    // Requests to the sandbox answer in well under a second; fail one that hangs instead of queueing.
    httpRequestTimeout: 30000,
    functionGlobalContext: {},
};
