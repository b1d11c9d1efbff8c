//! Storage: the seam and the embedded engines (the crate `spillway-storage`,
//! re-exported here whole), and [`engine`], which names an engine by URL and pairs the
//! remote ones a worker runs over.

pub use spillway_storage::*;

pub mod engine;
