//! `steward.audit.v1.AuditService`.
