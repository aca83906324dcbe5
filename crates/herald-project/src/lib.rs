//! herald-project
