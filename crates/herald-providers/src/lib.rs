//! herald-providers
