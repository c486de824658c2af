//! The partition model: DynamoDB's limits per partition key, at a scale factor K. Every
//! partition key value of the table, and of each of its global secondary indexes, gets a
//! token bucket of 1,000/K write units and 3,000/K read units a second, which holds
//! `burst_secs` of them (DynamoDB keeps up to 300 s of unused capacity for bursts). A
//! call that would write or read a key whose bucket is spent is answered as DynamoDB
//! answers it, 400 `ProvisionedThroughputExceededException`, and never reaches the
//! emulator; an index whose key is spent throttles the table write that would update it.
//!
//! Units are counted as DynamoDB counts them ([`units`]), from the items as they are
//! before and after each write: the model reads them from the emulator around the call
//! (those reads cost nothing), one call at a time per item. A write is let through when
//! every bucket it is known to touch has units left (the table's key, the index entries
//! the item has, and those a put brings); what it then spends may leave a bucket in debt,
//! which the next calls wait out. So at K, a design holds at 1/K of the rates it would
//! hold at on AWS, each key against a limit K times smaller. Except the table's keys of
//! one entity (`unscaled`, `PRED#` for this stack): a key only one prediction writes
//! takes the same units at any rate of predictions, so it keeps AWS's own limits.

pub mod units;

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use units::{IndexKey, Item, index_writes, item_size, read_units, write_units};

/// DynamoDB's limits per partition, a second.
const WRITE_UNITS: f64 = 1000.0;
const READ_UNITS: f64 = 3000.0;

/// A call to the emulator the model makes for itself: not counted, not throttled.
pub trait Upstream: Sync {
    fn call(&self, operation: &str, body: Value) -> impl Future<Output = Option<Value>> + Send;
}

/// A table's keys and its indexes' keys, from `DescribeTable`.
#[derive(Clone, Debug)]
struct Schema {
    partition: String,
    sort: Option<String>,
    indexes: Vec<IndexKey>,
}

impl Schema {
    fn from_description(table: &Value) -> Option<Self> {
        let keys = |schema: &Value| -> Option<(String, Option<String>)> {
            let mut partition = None;
            let mut sort = None;
            for key in schema.as_array()? {
                let name = key["AttributeName"].as_str()?.to_owned();
                match key["KeyType"].as_str()? {
                    "HASH" => partition = Some(name),
                    _ => sort = Some(name),
                }
            }
            Some((partition?, sort))
        };
        let (partition, sort) = keys(&table["KeySchema"])?;
        let indexes = table["GlobalSecondaryIndexes"]
            .as_array()
            .map(|indexes| {
                indexes
                    .iter()
                    .filter_map(|index| {
                        let (partition, sort) = keys(&index["KeySchema"])?;
                        let projection = &index["Projection"];
                        let include = match projection["ProjectionType"].as_str() {
                            Some("ALL") => None,
                            _ => Some(
                                projection["NonKeyAttributes"]
                                    .as_array()
                                    .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
                                    .unwrap_or_default(),
                            ),
                        };
                        Some(IndexKey { name: index["IndexName"].as_str()?.to_owned(), partition, sort, include })
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(Self { partition, sort, indexes })
    }

    fn table_keys(&self) -> Vec<String> {
        std::iter::once(self.partition.clone()).chain(self.sort.clone()).collect()
    }

    /// The key of `item` (its key attributes), and its partition key value.
    fn key_of(&self, item: &Item) -> Option<(Item, String)> {
        let partition = item.get(&self.partition)?.as_object()?.values().next()?.as_str()?.to_owned();
        let key = self.table_keys().iter().filter_map(|k| Some((k.clone(), item.get(k)?.clone()))).collect();
        Some((key, partition))
    }
}

/// Where a key's units go: the table, or an index by its name.
type Scope = String;

#[derive(Debug)]
struct Bucket {
    units: f64,
    at: Instant,
}

#[derive(Debug, Default, Clone, Serialize)]
struct Spent {
    write: f64,
    read: f64,
    throttled: u64,
}

#[derive(Debug)]
struct State {
    /// Write and read buckets, by scope and key value.
    writes: HashMap<(Scope, String), Bucket>,
    reads: HashMap<(Scope, String), Bucket>,
    spent: HashMap<(Scope, String), Spent>,
    /// Write units by operation and the kind of item it wrote (its sort key up to `#`).
    by_kind: HashMap<String, f64>,
    since: Instant,
    throttles: u64,
    calls: u64,
}

impl State {
    fn new() -> Self {
        Self {
            writes: HashMap::new(),
            reads: HashMap::new(),
            spent: HashMap::new(),
            by_kind: HashMap::new(),
            since: Instant::now(),
            throttles: 0,
            calls: 0,
        }
    }
}

/// The key a call was refused for.
#[derive(Debug)]
pub struct Throttled {
    pub scope: String,
    pub key: String,
}

pub struct Partitions {
    scale: f64,
    burst_secs: f64,
    /// Prefixes of the table's keys held to AWS's own limits, not K times less.
    unscaled: Vec<String>,
    schemas: tokio::sync::Mutex<HashMap<String, Schema>>,
    state: Mutex<State>,
    /// One write at a time per item: what it was before and after is its own.
    stripes: Vec<tokio::sync::Mutex<()>>,
}

/// One item a write touches.
struct Touched {
    table: String,
    key: Item,
    partition: String,
    /// The item a put writes, whose index entries are known before it lands.
    put: Option<Item>,
    /// A condition check: read, never changed.
    check: bool,
}

impl Partitions {
    pub fn new(scale: f64, burst_secs: f64) -> Self {
        let stripes = (0..64).map(|_| tokio::sync::Mutex::new(())).collect();
        let unscaled = Vec::new();
        Self { scale, burst_secs, unscaled, schemas: Default::default(), state: Mutex::new(State::new()), stripes }
    }

    /// The same, the table's keys that begin with one of `prefixes` (each one entity's,
    /// whose load does not grow with the rate) held to AWS's own limits.
    pub fn unscaled(self, prefixes: Vec<String>) -> Self {
        Self { unscaled: prefixes, ..self }
    }

    /// `key`'s limit a second: AWS's, divided by K unless it is one entity's.
    fn limit(&self, (scope, key): &(Scope, String), write: bool) -> f64 {
        let aws = if write { WRITE_UNITS } else { READ_UNITS };
        let own = scope == "table" && self.unscaled.iter().any(|prefix| key.starts_with(prefix.as_str()));
        if own { aws } else { aws / self.scale }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_limit(&self) -> f64 {
        WRITE_UNITS / self.scale
    }

    fn read_limit(&self) -> f64 {
        READ_UNITS / self.scale
    }

    /// Starts the counts again (the buckets keep what they hold).
    pub fn reset(&self) {
        let mut state = self.lock();
        state.spent.clear();
        state.by_kind.clear();
        state.throttles = 0;
        state.calls = 0;
        state.since = Instant::now();
    }

    async fn schema(&self, upstream: &impl Upstream, table: &str) -> Option<Schema> {
        let mut schemas = self.schemas.lock().await;
        if let Some(schema) = schemas.get(table) {
            return Some(schema.clone());
        }
        let described = upstream.call("DescribeTable", json!({"TableName": table})).await?;
        let schema = Schema::from_description(&described["Table"])?;
        schemas.insert(table.to_owned(), schema.clone());
        Some(schema)
    }

    /// Runs `forward` (the call itself) under the model: `Err` when a key it would write
    /// or read has no units left, and then `forward` never runs.
    pub async fn serve<R>(
        &self,
        upstream: &impl Upstream,
        operation: &str,
        request: &Value,
        forward: impl Future<Output = R>,
    ) -> Result<R, Throttled> {
        match operation {
            "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" | "BatchWriteItem" => {
                self.write(upstream, operation, request, forward).await
            }
            "GetItem" => self.get(upstream, request, forward).await,
            "Query" => self.query(upstream, request, forward).await,
            _ => Ok(forward.await),
        }
    }

    async fn touched(&self, upstream: &impl Upstream, operation: &str, request: &Value) -> Vec<(Touched, Schema)> {
        let mut found = Vec::new();
        let add = |table: &str, item: &Value, put: bool, check: bool| (table.to_owned(), item.clone(), put, check);
        let mut wanted = Vec::new();
        match operation {
            "PutItem" => wanted.push(add(request["TableName"].as_str().unwrap_or(""), &request["Item"], true, false)),
            "UpdateItem" | "DeleteItem" => {
                wanted.push(add(request["TableName"].as_str().unwrap_or(""), &request["Key"], false, false));
            }
            "TransactWriteItems" => {
                for action in request["TransactItems"].as_array().into_iter().flatten() {
                    for (kind, body) in action.as_object().into_iter().flatten() {
                        let table = body["TableName"].as_str().unwrap_or("");
                        match kind.as_str() {
                            "Put" => wanted.push(add(table, &body["Item"], true, false)),
                            "ConditionCheck" => wanted.push(add(table, &body["Key"], false, true)),
                            _ => wanted.push(add(table, &body["Key"], false, false)),
                        }
                    }
                }
            }
            "BatchWriteItem" => {
                for (table, requests) in request["RequestItems"].as_object().into_iter().flatten() {
                    for one in requests.as_array().into_iter().flatten() {
                        match one.get("PutRequest") {
                            Some(put) => wanted.push(add(table, &put["Item"], true, false)),
                            None => wanted.push(add(table, &one["DeleteRequest"]["Key"], false, false)),
                        }
                    }
                }
            }
            _ => {}
        }
        for (table, item, put, check) in wanted {
            let Some(schema) = self.schema(upstream, &table).await else { continue };
            let Some(item) = item.as_object() else { continue };
            let Some((key, partition)) = schema.key_of(item) else { continue };
            let put = put.then(|| item.clone());
            found.push((Touched { table, key, partition, put, check }, schema));
        }
        found
    }

    async fn read_item(upstream: &impl Upstream, table: &str, key: &Item) -> Option<Item> {
        let got = upstream.call("GetItem", json!({"TableName": table, "Key": key, "ConsistentRead": true})).await?;
        got.get("Item").and_then(Value::as_object).cloned()
    }

    async fn write<R>(
        &self,
        upstream: &impl Upstream,
        operation: &str,
        request: &Value,
        forward: impl Future<Output = R>,
    ) -> Result<R, Throttled> {
        let touched = self.touched(upstream, operation, request).await;
        let mut stripes: Vec<usize> =
            touched.iter().map(|(t, _)| stripe(&t.table, &t.key, self.stripes.len())).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for n in stripes {
            guards.push(self.stripes[n].lock().await);
        }
        let mut before = Vec::with_capacity(touched.len());
        for (t, _) in &touched {
            before.push(Self::read_item(upstream, &t.table, &t.key).await);
        }
        // Let through only if every bucket the write is known to touch has units left.
        let mut known: Vec<(Scope, String)> = Vec::new();
        for ((t, schema), before) in touched.iter().zip(&before) {
            known.push(("table".into(), t.partition.clone()));
            for index in &schema.indexes {
                for item in [before.as_ref(), t.put.as_ref()].into_iter().flatten() {
                    if let Some(entry) = index_writes(index, &schema.table_keys(), None, Some(item)).first() {
                        known.push((index.name.clone(), entry.0.clone()));
                    }
                }
            }
        }
        self.admit(&known, true)?;
        let answer = forward.await;
        let twice = if operation == "TransactWriteItems" { 2.0 } else { 1.0 };
        let mut spent: Vec<(Scope, String, f64)> = Vec::new();
        let mut kinds: Vec<(String, f64)> = Vec::new();
        for ((t, schema), before) in touched.iter().zip(&before) {
            let after = if t.check { before.clone() } else { Self::read_item(upstream, &t.table, &t.key).await };
            let units = write_units(before.as_ref(), after.as_ref()) as f64;
            spent.push(("table".into(), t.partition.clone(), units * twice));
            kinds.push((format!("{operation} {}", kind(&t.key)), units * twice));
            // Once, even from a transaction: what a committed transaction changed then
            // propagates to the indexes as any write's change does (units.rs).
            for index in &schema.indexes {
                for (key, units) in index_writes(index, &schema.table_keys(), before.as_ref(), after.as_ref()) {
                    kinds.push((format!("{operation} {} index {}", kind(&t.key), index.name), units as f64));
                    spent.push((index.name.clone(), key, units as f64));
                }
            }
        }
        drop(guards);
        self.spend(&spent, true);
        let mut state = self.lock();
        for (kind, units) in kinds {
            *state.by_kind.entry(kind).or_default() += units;
        }
        drop(state);
        Ok(answer)
    }

    async fn get<R>(
        &self,
        upstream: &impl Upstream,
        request: &Value,
        forward: impl Future<Output = R>,
    ) -> Result<R, Throttled> {
        let table = request["TableName"].as_str().unwrap_or("");
        let Some(schema) = self.schema(upstream, table).await else { return Ok(forward.await) };
        let Some((key, partition)) = request["Key"].as_object().and_then(|k| schema.key_of(k)) else {
            return Ok(forward.await);
        };
        self.admit(&[("table".into(), partition.clone())], false)?;
        let answer = forward.await;
        // A read costs the whole item's size, whatever it projects.
        let size = Self::read_item(upstream, table, &key).await.as_ref().map_or(0, item_size);
        let consistent = request["ConsistentRead"].as_bool().unwrap_or(false);
        self.spend(&[("table".into(), partition, read_units(size, consistent))], false);
        Ok(answer)
    }

    async fn query<R>(
        &self,
        upstream: &impl Upstream,
        request: &Value,
        forward: impl Future<Output = R>,
    ) -> Result<R, Throttled> {
        let table = request["TableName"].as_str().unwrap_or("");
        let Some(schema) = self.schema(upstream, table).await else { return Ok(forward.await) };
        let index = request["IndexName"].as_str();
        let partition_name = match index {
            Some(name) => schema.indexes.iter().find(|i| i.name == name).map(|i| i.partition.clone()),
            None => Some(schema.partition.clone()),
        };
        let Some(value) = partition_name.and_then(|name| queried_partition(request, &name)) else {
            return Ok(forward.await);
        };
        let scope: Scope = index.unwrap_or("table").to_owned();
        self.admit(&[(scope.clone(), value.clone())], false)?;
        let answer = forward.await;
        // What it read, items as they are in the table or the index; a count reads them too.
        let mut read = request.clone();
        if let Some(read) = read.as_object_mut() {
            read.remove("Select");
        }
        let bytes = upstream
            .call("Query", read)
            .await
            .and_then(|out| {
                out["Items"].as_array().map(|items| items.iter().filter_map(Value::as_object).map(item_size).sum())
            })
            .unwrap_or(0);
        let consistent = index.is_none() && request["ConsistentRead"].as_bool().unwrap_or(false);
        self.spend(&[(scope, value, read_units(bytes, consistent))], false);
        Ok(answer)
    }

    /// Refuses when any of `keys` has no units left.
    fn admit(&self, keys: &[(Scope, String)], write: bool) -> Result<(), Throttled> {
        let burst = self.burst_secs;
        let mut state = self.lock();
        state.calls += 1;
        let now = Instant::now();
        let empty = keys.iter().find(|key| {
            let limit = self.limit(key, write);
            let buckets = if write { &mut state.writes } else { &mut state.reads };
            let bucket = buckets.entry((*key).clone()).or_insert(Bucket { units: limit * burst, at: now });
            bucket.units = (bucket.units + limit * (now - bucket.at).as_secs_f64()).min(limit * burst);
            bucket.at = now;
            bucket.units <= 0.0
        });
        let Some((scope, key)) = empty.cloned() else { return Ok(()) };
        state.throttles += 1;
        state.spent.entry((scope.clone(), key.clone())).or_default().throttled += 1;
        Err(Throttled { scope, key })
    }

    fn spend(&self, spent: &[(Scope, String, f64)], write: bool) {
        let burst = self.burst_secs;
        let mut state = self.lock();
        let now = Instant::now();
        for (scope, key, units) in spent {
            let limit = self.limit(&(scope.clone(), key.clone()), write);
            let buckets = if write { &mut state.writes } else { &mut state.reads };
            let bucket =
                buckets.entry((scope.clone(), key.clone())).or_insert(Bucket { units: limit * burst, at: now });
            bucket.units -= units;
            let totals = state.spent.entry((scope.clone(), key.clone())).or_default();
            if write {
                totals.write += units;
            } else {
                totals.read += units;
            }
        }
    }

    /// The counts since the last reset: throttles by key, and the hottest keys by write and
    /// by read, each with its rate over the time since the reset as a fraction of its limit.
    pub fn report(&self) -> Value {
        let state = self.lock();
        let secs = state.since.elapsed().as_secs_f64().max(1e-3);
        let rate = |key: &(Scope, String), units: f64, write: bool| units / secs / self.limit(key, write);
        let row = |key: &(Scope, String), spent: &Spent| {
            json!({"scope": key.0, "key": key.1, "write_units": spent.write, "read_units": spent.read,
                   "throttled": spent.throttled,
                   "write_rate_of_limit": rate(key, spent.write, true),
                   "read_rate_of_limit": rate(key, spent.read, false)})
        };
        // Keys ranked by `by`: each against its own limit (a key of one entity keeps AWS's).
        let top = |by: &dyn Fn(&(Scope, String), &Spent) -> f64| {
            let mut keys: Vec<_> = state.spent.iter().filter(|(k, s)| by(k, s) > 0.0).collect();
            keys.sort_by(|a, b| by(b.0, b.1).total_cmp(&by(a.0, a.1)));
            keys.into_iter().take(5).map(|(k, s)| row(k, s)).collect::<Vec<_>>()
        };
        // Units by scope (the table, each index): what one prediction costs each.
        let mut by_scope = serde_json::Map::new();
        for ((scope, _), spent) in &state.spent {
            let entry = by_scope.entry(scope.clone()).or_insert_with(|| json!({"write_units": 0.0, "read_units": 0.0}));
            entry["write_units"] = json!(entry["write_units"].as_f64().unwrap_or(0.0) + spent.write);
            entry["read_units"] = json!(entry["read_units"].as_f64().unwrap_or(0.0) + spent.read);
        }
        // The hottest key of each scope, by its write rate against its limit.
        let mut hottest_by_scope = serde_json::Map::new();
        for (key, spent) in &state.spent {
            let share = rate(key, spent.write, true);
            let hotter =
                hottest_by_scope.get(&key.0).is_none_or(|row| row["write_rate_of_limit"].as_f64() < Some(share));
            if hotter {
                hottest_by_scope.insert(key.0.clone(), row(key, spent));
            }
        }
        json!({
            "scale": self.scale,
            "by_scope": by_scope,
            "by_kind": state.by_kind,
            "hottest_by_scope": hottest_by_scope,
            "burst_secs": self.burst_secs,
            "unscaled": self.unscaled,
            "limits": {"write_units_per_sec": self.write_limit(), "read_units_per_sec": self.read_limit()},
            "secs": secs,
            "calls": state.calls,
            "keys": state.spent.len(),
            "throttles": state.throttles,
            "throttled": top(&|_, s| s.throttled as f64),
            "hottest_writes": top(&|k, s| rate(k, s.write, true)),
            "hottest_reads": top(&|k, s| rate(k, s.read, false)),
        })
    }
}

/// The partition key value a query asks for: in `KeyConditionExpression`, the value set
/// equal to the attribute `name` (by name or `#placeholder`).
fn queried_partition(request: &Value, name: &str) -> Option<String> {
    let expression = request["KeyConditionExpression"].as_str()?;
    let names = &request["ExpressionAttributeNames"];
    for clause in expression.split(" AND ").chain(expression.split(" and ")) {
        let Some((left, right)) = clause.split_once('=') else { continue };
        let (left, right) = (left.trim().trim_start_matches('('), right.trim().trim_end_matches(')'));
        let attribute = if left.starts_with('#') { names[left].as_str()? } else { left };
        if attribute == name && right.starts_with(':') {
            let value = &request["ExpressionAttributeValues"][right];
            return value.as_object()?.values().next()?.as_str().map(str::to_owned);
        }
    }
    None
}

fn stripe(table: &str, key: &Item, stripes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    table.hash(&mut hasher);
    Value::Object(key.clone()).to_string().hash(&mut hasher);
    (hasher.finish() % stripes as u64) as usize
}

/// The kind of item a key names: its sort key up to the first `#` (`PRED`, `EVENT`,
/// `STEP`, `RECORD`, ...), or its partition key's when it has no sort key.
fn kind(key: &Item) -> String {
    let value = |name: &str| key.get(name).and_then(|v| v.as_object()?.values().next()?.as_str().map(str::to_owned));
    let whole = value("sk").or_else(|| value("pk")).unwrap_or_default();
    whole.split('#').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use super::*;

    /// An emulator of one table with a keys-only index `open` on `open_pk`/`open_since`,
    /// holding items in memory; calls the model makes are answered from it.
    #[derive(Default)]
    struct Emulator(StdMutex<HashMap<String, Item>>);

    impl Emulator {
        fn put(&self, item: Value) {
            let item = item.as_object().unwrap().clone();
            let key = format!("{}{}", item["pk"], item["sk"]);
            self.0.lock().unwrap().insert(key, item);
        }
    }

    impl Upstream for Emulator {
        async fn call(&self, operation: &str, body: Value) -> Option<Value> {
            match operation {
                "DescribeTable" => Some(json!({"Table": {
                    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                    "GlobalSecondaryIndexes": [{"IndexName": "open", "KeySchema": [
                        {"AttributeName": "open_pk", "KeyType": "HASH"}, {"AttributeName": "open_since", "KeyType": "RANGE"}]}],
                }})),
                "GetItem" => {
                    let key = format!("{}{}", body["Key"]["pk"], body["Key"]["sk"]);
                    Some(self.0.lock().unwrap().get(&key).map_or(json!({}), |item| json!({"Item": item})))
                }
                _ => Some(json!({"Items": []})),
            }
        }
    }

    fn register(n: usize) -> (Value, Value) {
        let item = json!({"pk": {"S": format!("PRED#{n}")}, "sk": {"S": "PRED"},
                          "open_pk": {"S": "OPEN"}, "open_since": {"S": format!("2026-12-03T00:00:{n:02}Z")}});
        (json!({"TableName": "t", "Item": item.clone()}), item)
    }

    #[tokio::test]
    async fn a_key_written_past_its_scaled_limit_and_burst_is_refused_and_others_are_not() {
        // K = 1000: one write unit a second per key, and 2.5 s of it to burst.
        let (model, emulator) = (Partitions::new(1000.0, 2.5), Emulator::default());
        let mut refused = Vec::new();
        for n in 0..5 {
            let (request, item) = register(n);
            let put = async { emulator.put(item) };
            if let Err(throttled) = model.serve(&emulator, "PutItem", &request, put).await {
                refused.push((throttled.scope, throttled.key));
            }
        }
        // Each put is a unit on its own table key, and one on the index's one key, OPEN:
        // two pass on the burst, the third is let through on the half unit left and
        // leaves the key in debt, and the rest are refused, for the index's key.
        assert_eq!(refused, vec![("open".to_owned(), "OPEN".to_owned()); 2], "{refused:?}");
        let report = model.report();
        assert_eq!(report["hottest_writes"][0]["key"], "OPEN", "{report}");
        assert_eq!(report["hottest_writes"][0]["write_units"], 3.0);
        assert_eq!(report["throttled"][0]["throttled"], 2);
    }

    #[tokio::test]
    async fn a_transaction_costs_twice_and_a_removed_index_key_is_a_write_to_the_index() {
        let (model, emulator) = (Partitions::new(1.0, 300.0), Emulator::default());
        let (_, item) = register(1);
        emulator.put(item.clone());
        // The terminal status: the prediction leaves the index, in a transaction with the
        // event's put.
        let mut finished = item.clone();
        finished.as_object_mut().unwrap().remove("open_pk");
        let event = json!({"pk": {"S": "PRED#1"}, "sk": {"S": "EVENT#succeeded"}, "payload": {"S": "x".repeat(1500)}});
        let request = json!({"TransactItems": [
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "PRED#1"}, "sk": {"S": "PRED"}}}},
            {"Put": {"TableName": "t", "Item": event.clone()}},
        ]});
        let apply = async {
            emulator.put(finished);
            emulator.put(event);
        };
        model.serve(&emulator, "TransactWriteItems", &request, apply).await.unwrap();
        let report = model.report();
        let by_key: HashMap<String, f64> = report["hottest_writes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| (row["key"].as_str().unwrap().to_owned(), row["write_units"].as_f64().unwrap()))
            .collect();
        // The prediction (1 unit) and the 1.5 KB event (2 units), twice; the index entry
        // deleted once, as the committed change propagates.
        assert_eq!(by_key["PRED#1"], 2.0 * (1.0 + 2.0), "{report}");
        assert_eq!(by_key["OPEN"], 1.0, "{report}");
        // And by scope: what the table and each index spent in all.
        assert_eq!(report["by_scope"]["table"]["write_units"], 6.0, "{report}");
        assert_eq!(report["by_scope"]["open"]["write_units"], 1.0, "{report}");
        assert_eq!(report["hottest_by_scope"]["table"]["key"], "PRED#1", "{report}");
        assert_eq!(report["hottest_by_scope"]["open"]["write_units"], 1.0, "{report}");
        // And by what wrote which kind of item.
        assert_eq!(report["by_kind"]["TransactWriteItems PRED"], 2.0, "{report}");
        assert_eq!(report["by_kind"]["TransactWriteItems EVENT"], 4.0, "{report}");
        assert_eq!(report["by_kind"]["TransactWriteItems PRED index open"], 1.0, "{report}");
    }

    #[test]
    fn a_querys_partition_is_the_value_its_key_condition_sets_the_key_to() {
        let request = json!({"KeyConditionExpression": "#pk = :partition AND #since < :before",
            "ExpressionAttributeNames": {"#pk": "open_pk", "#since": "open_since"},
            "ExpressionAttributeValues": {":partition": {"S": "OPEN#7"}, ":before": {"S": "x"}}});
        assert_eq!(queried_partition(&request, "open_pk").as_deref(), Some("OPEN#7"));
        let plain =
            json!({"KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": {":pk": {"S": "PRED#1"}}});
        assert_eq!(queried_partition(&plain, "pk").as_deref(), Some("PRED#1"));
    }

    #[tokio::test]
    async fn a_key_of_one_entity_keeps_aws_limits_while_shared_keys_are_scaled() {
        // K = 1000 and a second of burst: a shared key holds one unit, a prediction's own
        // key 1,000. Three one-unit puts to one prediction's key, with and without it.
        async fn three_puts(model: &Partitions) -> u64 {
            let emulator = Emulator::default();
            for n in 0..3 {
                let mut item = register(n).1;
                item["pk"] = json!({"S": "PRED#same"});
                item["sk"] = json!({"S": format!("EVENT#{n}")});
                item.as_object_mut().unwrap().remove("open_pk");
                let request = json!({"TableName": "t", "Item": item.clone()});
                let put = async { emulator.put(item) };
                let _ = model.serve(&emulator, "PutItem", &request, put).await;
            }
            model.report()["throttles"].as_u64().unwrap()
        }
        let own = Partitions::new(1000.0, 1.0).unscaled(vec!["PRED#".into()]);
        assert_eq!(three_puts(&own).await, 0, "one prediction's key at AWS's limits");
        assert_eq!(own.report()["unscaled"][0], "PRED#");
        assert!(three_puts(&Partitions::new(1000.0, 1.0)).await > 0, "the same key, scaled, is throttled");
    }
}
