//! The query planner: a sort-key condition as the run of a partition it selects.
//!
//! Every sort-key condition DynamoDB accepts (`=`, `<`, `<=`, `>`, `>=`, `BETWEEN`,
//! `begins_with`) keeps one contiguous run of a partition in sort-key order, and item
//! keys are encoded so that byte order is sort-key order (`table::key`). So a query
//! asks storage to begin at the run's start instead of reading the partition from its
//! beginning, and ends at the first item past the run: `Limit` and `ScannedCount` count
//! only items of the run, and a condition near the end of a large partition reads about
//! what it returns.

use std::ops::Bound;

use super::AttributeValue;

/// A query's condition on the sort key, as bounds in sort-key order.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKeyCondition {
    /// No condition: the whole partition.
    Any,
    /// Between two bounds.
    Range {
        lower: Bound<AttributeValue>,
        upper: Bound<AttributeValue>,
    },
    /// `begins_with`: from the prefix on, while items start with it (the run's end is
    /// found by reading, not computed).
    Prefix(AttributeValue),
}

impl SortKeyCondition {
    /// The condition a key-condition operator (`EQ`, `LT`, `LE`, `GT`, `GE`, `BETWEEN`,
    /// `BEGINS_WITH`) states with its values, which the caller has checked.
    pub fn from_operator(op: &str, values: &[AttributeValue]) -> Self {
        use Bound::{Excluded, Included, Unbounded};
        let Some(first) = values.first().cloned() else {
            return Self::Any;
        };
        let range = |lower, upper| Self::Range { lower, upper };
        match op {
            "EQ" => range(Included(first.clone()), Included(first)),
            "LT" => range(Unbounded, Excluded(first)),
            "LE" => range(Unbounded, Included(first)),
            "GT" => range(Excluded(first), Unbounded),
            "GE" => range(Included(first), Unbounded),
            "BETWEEN" => range(
                Included(first),
                values.get(1).cloned().map_or(Unbounded, Included),
            ),
            "BEGINS_WITH" => Self::Prefix(first),
            _ => Self::Any,
        }
    }

    /// Where reading begins in the direction of travel, and whether that is where the
    /// run begins (then the first item the condition refuses ends the run; otherwise
    /// reading skips refused items until the run begins).
    pub fn start(&self, forward: bool) -> (Bound<&AttributeValue>, bool) {
        match (self, forward) {
            (Self::Any, _) => (Bound::Unbounded, true),
            (Self::Range { lower, .. }, true) => (lower.as_ref(), true),
            (Self::Range { upper, .. }, false) => (upper.as_ref(), true),
            (Self::Prefix(p), true) => (Bound::Included(p), true),
            (Self::Prefix(_), false) => (Bound::Unbounded, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operator_bounds_its_run_on_the_side_it_reads_from() {
        let v = |s: &str| AttributeValue::S(s.into());
        let gt = SortKeyCondition::from_operator("GT", &[v("m")]);
        assert_eq!(gt.start(true), (Bound::Excluded(&v("m")), true));
        assert_eq!(gt.start(false), (Bound::Unbounded, true));
        let between = SortKeyCondition::from_operator("BETWEEN", &[v("a"), v("c")]);
        assert_eq!(between.start(false), (Bound::Included(&v("c")), true));
        let prefix = SortKeyCondition::from_operator("BEGINS_WITH", &[v("ab")]);
        assert_eq!(prefix.start(true), (Bound::Included(&v("ab")), true));
        assert_eq!(prefix.start(false), (Bound::Unbounded, false));
        assert_eq!(
            SortKeyCondition::from_operator("EQ", &[]),
            SortKeyCondition::Any
        );
    }
}
