//! herald-openapi
