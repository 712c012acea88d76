//! Request limits (set by the configuration, enforced by every service).

/// Documented request limits, enforced with clear errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Max metric points in one LogRunData or one StreamMetrics message.
    pub max_points_per_batch: usize,
    /// Max params in one LogRunData.
    pub max_params_per_batch: usize,
    /// Max tags in one LogRunData or on one resource.
    pub max_tags_per_batch: usize,
    /// Max length of a metric/param/tag key, in bytes.
    pub max_key_bytes: usize,
    /// Max length of a param value, in bytes.
    pub max_param_value_bytes: usize,
    /// Max length of a tag value, in bytes.
    pub max_tag_value_bytes: usize,
    /// Max gRPC message size, in bytes (decode and encode).
    pub max_message_bytes: usize,
    /// Max page size of List/Search.
    pub max_page_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_points_per_batch: 100_000,
            max_params_per_batch: 1_000,
            max_tags_per_batch: 1_000,
            max_key_bytes: 250,
            max_param_value_bytes: 8_000,
            max_tag_value_bytes: 8_000,
            max_message_bytes: 64 * 1024 * 1024,
            max_page_size: 1_000,
        }
    }
}
