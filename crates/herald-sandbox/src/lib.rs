//! herald-sandbox
