//! herald-expr
