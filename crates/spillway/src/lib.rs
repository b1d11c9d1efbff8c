//! spillway: the AWS "buffer the spike" pipeline (API Gateway -> Kinesis -> Lambda ->
//! DynamoDB) as one binary. See ARCHITECTURE.md for how the modules fit together.

pub mod api;
pub mod cli;
/// Time as the domain reads it (defined beside the engine, which stamps arrival times).
pub use spillway_storage::clock;
pub mod config;
pub mod demo;
pub mod function;
pub mod gateway;
pub mod iam;
pub mod inspection;
pub mod lambda;
pub mod load;
pub mod logs;
pub mod mapping;
pub mod metrics;
pub mod naming;
pub mod queue;
pub mod remote;
pub mod server;
pub mod storage;
pub mod stream;
pub mod table;
pub mod worker;
