//! herald-sms
