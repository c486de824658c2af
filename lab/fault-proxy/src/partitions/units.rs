//! Capacity units as DynamoDB counts them (Developer Guide, "Read/write capacity mode",
//! "Item sizes and formats", "Global secondary indexes: provisioned throughput
//! considerations", "Transactions: capacity management"):
//! - an item's size is the sum, over its attributes, of the name's UTF-8 length and the
//!   value's size: a string its UTF-8 length, a number about one byte per two significant
//!   digits plus one, binary its length, a boolean or null one byte, a list or map three
//!   bytes plus one a member and its members, a set its members;
//! - a write is one unit per KB of the larger of the item before and after, rounded up,
//!   at least one; a conditional write whose condition fails still costs the units of the
//!   item as it is;
//! - a write to a global secondary index is one unit per KB of the projected item, and
//!   only when the write sets, changes or removes the index's key attributes (a change of
//!   key is two writes: the old entry deleted, the new one put);
//! - a read is one unit per 4 KB, rounded up over the whole answer for a query, half that
//!   when eventually consistent (every read of an index is);
//! - a transaction costs twice: "DynamoDB performs two underlying reads or writes of
//!   every item in the transaction: one to prepare the transaction and one to commit the
//!   transaction", a cancelled one too, for every item as it is (whether DynamoDB bills a
//!   cancelled transaction's items is not said; counting them is the harder test). Its
//!   index writes count once: "After a transaction completes in DynamoDB, its changes
//!   begin propagating to global secondary indexes (GSIs), streams, and backups", the
//!   committed change propagated as any write's is, and "the total provisioned throughput
//!   cost for a write consists of the sum of write capacity units consumed by writing to
//!   the table and those consumed by updating the global secondary indexes".

use serde_json::{Map, Value};

pub type Item = Map<String, Value>;

/// The size DynamoDB gives an item, in bytes.
pub fn item_size(item: &Item) -> u64 {
    item.iter().map(|(name, value)| name.len() as u64 + value_size(value)).sum()
}

fn value_size(value: &Value) -> u64 {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else { return 0 };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len() as u64,
        ("N", Value::String(n)) => number_size(n),
        // Binary travels base64-encoded: its size is the decoded bytes.
        ("B", Value::String(b)) => (b.trim_end_matches('=').len() as u64 * 3) / 4,
        ("BOOL" | "NULL", _) => 1,
        ("SS", Value::Array(members)) => members.iter().filter_map(Value::as_str).map(|s| s.len() as u64).sum(),
        ("NS", Value::Array(members)) => members.iter().filter_map(Value::as_str).map(number_size).sum(),
        ("BS", Value::Array(members)) => {
            members.iter().filter_map(Value::as_str).map(|b| (b.trim_end_matches('=').len() as u64 * 3) / 4).sum()
        }
        ("L", Value::Array(members)) => 3 + members.iter().map(|m| 1 + value_size(m)).sum::<u64>(),
        ("M", Value::Object(fields)) => 3 + fields.iter().map(|(k, v)| 1 + k.len() as u64 + value_size(v)).sum::<u64>(),
        _ => 0,
    }
}

/// A number's size: one byte per two significant digits, plus one.
fn number_size(number: &str) -> u64 {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len().max(1) as u64;
    significant.div_ceil(2) + 1
}

/// Write units of one item written: the larger of before and after, per KB, at least one.
pub fn write_units(before: Option<&Item>, after: Option<&Item>) -> u64 {
    let size = before.map_or(0, item_size).max(after.map_or(0, item_size));
    size.div_ceil(1024).max(1)
}

/// Read units of `bytes` read, per 4 KB rounded up; half when eventually consistent.
pub fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

/// An index's key and what it projects: the table's keys and its own (`KEYS_ONLY`), and
/// for `INCLUDE` the attributes it names too (`ALL` projects everything).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexKey {
    pub name: String,
    pub partition: String,
    pub sort: Option<String>,
    /// `None`: every attribute (`ALL`); else the non-key attributes projected.
    pub include: Option<Vec<String>>,
}

/// The index writes one item's write makes: `(partition key value, units)` for each entry
/// deleted or put. `table_keys` are the table's key attribute names, kept in every
/// projection.
pub fn index_writes(
    index: &IndexKey,
    table_keys: &[String],
    before: Option<&Item>,
    after: Option<&Item>,
) -> Vec<(String, u64)> {
    let entry = |item: Option<&Item>| -> Option<(String, Option<Value>, u64, Item)> {
        let item = item?;
        let partition = item.get(&index.partition)?.as_object()?.values().next()?.as_str()?.to_owned();
        let sort = match &index.sort {
            Some(sort) => Some(item.get(sort)?.clone()),
            None => None,
        };
        let projected: Item = item
            .iter()
            .filter(|(name, _)| {
                table_keys.contains(name)
                    || **name == index.partition
                    || Some(name.as_str()) == index.sort.as_deref()
                    || index.include.as_ref().is_none_or(|include| include.contains(name))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let units = item_size(&projected).div_ceil(1024).max(1);
        Some((partition, sort, units, projected))
    };
    match (entry(before), entry(after)) {
        (None, None) => Vec::new(),
        (None, Some((partition, _, units, _))) | (Some((partition, _, units, _)), None) => vec![(partition, units)],
        // Same keys: written in place only when what it projects changed.
        (Some(old), Some(new)) if old.0 == new.0 && old.1 == new.1 => {
            if old.3 == new.3 {
                Vec::new()
            } else {
                vec![(new.0, old.2.max(new.2))]
            }
        }
        (Some(old), Some(new)) => vec![(old.0, old.2), (new.0, new.2)],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn item(value: Value) -> Item {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn an_items_size_is_its_names_and_values_as_the_guide_counts_them() {
        // "pk" (2) + "PRED#x" (6), "n" (1) + 12345 (three bytes of digits pairs + 1).
        assert_eq!(item_size(&item(json!({"pk": {"S": "PRED#x"}, "n": {"N": "12345"}}))), 2 + 6 + 1 + 4);
        // Leading and trailing zeroes are not significant.
        assert_eq!(number_size("0012300"), 3);
        assert_eq!(item_size(&item(json!({"b": {"BOOL": true}, "z": {"NULL": true}}))), 4);
        // A list: three bytes, then one a member plus the member.
        assert_eq!(item_size(&item(json!({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}))), 1 + 3 + (1 + 2) + (1 + 2));
        assert_eq!(item_size(&item(json!({"ss": {"SS": ["a", "bc"]}}))), 2 + 3);
        assert_eq!(item_size(&item(json!({"bin": {"B": "AAAA"}}))), 3 + 3, "base64 of three bytes");
        assert_eq!(item_size(&item(json!({"é": {"S": "é"}}))), 4, "UTF-8 lengths");
    }

    #[test]
    fn a_write_is_a_unit_per_kb_of_the_larger_of_before_and_after_and_at_least_one() {
        let small = item(json!({"pk": {"S": "a"}}));
        let large = item(json!({"pk": {"S": "a"}, "payload": {"S": "x".repeat(2500)}}));
        assert_eq!(write_units(None, Some(&small)), 1);
        assert_eq!(write_units(Some(&large), Some(&small)), 3, "the larger of the two");
        assert_eq!(write_units(Some(&large), None), 3, "a delete: the item deleted");
        assert_eq!(write_units(None, None), 1, "a failed condition on nothing: one");
        let exactly = item(json!({"k": {"S": "x".repeat(1023)}}));
        assert_eq!(write_units(None, Some(&exactly)), 1, "1,024 bytes is one unit");
    }

    #[test]
    fn a_read_is_a_unit_per_4_kb_and_half_that_eventually_consistent() {
        assert_eq!(read_units(100, true), 1.0);
        assert_eq!(read_units(4096, true), 1.0);
        assert_eq!(read_units(4097, true), 2.0);
        assert_eq!(read_units(4097, false), 1.0);
        assert_eq!(read_units(0, false), 0.5);
    }

    #[test]
    fn an_index_is_written_only_when_its_keys_are_set_changed_or_removed() {
        let index = IndexKey {
            name: "open".into(),
            partition: "open_pk".into(),
            sort: Some("open_since".into()),
            include: Some(vec![]),
        };
        let keys = ["pk".to_owned(), "sk".to_owned()];
        let base = json!({"pk": {"S": "PRED#1"}, "sk": {"S": "PRED"}, "status": {"S": "pending"}});
        let mut open = base.clone();
        open["open_pk"] = json!({"S": "OPEN#3"});
        open["open_since"] = json!({"S": "2026-12-03T00:00:00Z"});
        let (base, open) = (item(base), item(open));
        assert_eq!(index_writes(&index, &keys, None, Some(&open)), [("OPEN#3".to_owned(), 1)], "set: a put");
        assert_eq!(index_writes(&index, &keys, Some(&open), Some(&base)), [("OPEN#3".to_owned(), 1)], "removed");
        assert!(index_writes(&index, &keys, Some(&base), Some(&base)).is_empty(), "not in the index: nothing");
        // Another attribute changes: a keys-only index holds nothing of it.
        let mut started = open.clone();
        started.insert("status".into(), json!({"S": "started"}));
        assert!(index_writes(&index, &keys, Some(&open), Some(&started)).is_empty());
        // The sort key changes: the old entry deleted, the new one put.
        let mut later = open.clone();
        later.insert("open_since".into(), json!({"S": "2026-12-03T00:05:00Z"}));
        assert_eq!(index_writes(&index, &keys, Some(&open), Some(&later)).len(), 2);
        // A large item projects only its keys: one unit.
        let mut large = open.clone();
        large.insert("payload".into(), json!({"S": "x".repeat(5000)}));
        assert_eq!(index_writes(&index, &keys, None, Some(&large)), [("OPEN#3".to_owned(), 1)]);
    }

    #[test]
    fn an_include_index_is_written_in_place_when_what_it_projects_changes() {
        let index = IndexKey {
            name: "received".into(),
            partition: "recv_pk".into(),
            sort: Some("received_at".into()),
            include: Some(vec!["work".into()]),
        };
        let keys = ["pk".to_owned(), "sk".to_owned()];
        let waiting = item(json!({"pk": {"S": "PRED#1"}, "sk": {"S": "EVENT#succeeded"}, "recv_pk": {"S": "RECV#3"},
                                  "received_at": {"S": "t"}, "work_token": {"S": "a"}}));
        let mut claimed = waiting.clone();
        claimed.insert("work_token".into(), json!({"S": "b"}));
        assert!(index_writes(&index, &keys, Some(&waiting), Some(&claimed)).is_empty(), "not projected: nothing");
        let mut done = claimed.clone();
        done.insert("work".into(), json!({"S": "done"}));
        assert_eq!(
            index_writes(&index, &keys, Some(&claimed), Some(&done)),
            [("RECV#3".to_owned(), 1)],
            "one in place"
        );
        let all = IndexKey { include: None, ..index };
        assert_eq!(index_writes(&all, &keys, Some(&waiting), Some(&claimed)).len(), 1, "ALL projects every change");
    }
}
