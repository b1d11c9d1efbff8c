//! DynamoDB's item model, with nothing of storage, HTTP or the rest of spillway:
//! attribute values and items ([`value`]), exact 38-digit decimals with DynamoDB's
//! range and messages ([`number`]), expressions (condition, projection, update: tokens,
//! parser, evaluation; [`expr`], with the reserved words in [`reserved`]), and the
//! order-preserving encoding of key values ([`key`]; stable: it is spillway's on-disk
//! item key).
//!
//! A crate of its own so the layering holds by construction: the table domain and the
//! DynamoDB API build on it, and it can depend on neither.

pub mod expr;
pub mod key;
pub mod number;
pub mod reserved;
pub mod value;
