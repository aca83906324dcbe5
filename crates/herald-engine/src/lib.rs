//! herald-engine
