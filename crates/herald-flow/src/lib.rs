//! herald-flow
