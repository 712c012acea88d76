//! AuditService tests.
