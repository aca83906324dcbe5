//! The query a Get Records element asks its driver to run: conditions already evaluated against the
//! run, so the driver only reads stored records and hands each one to [`RecordQuery::matches`].
//! Comparisons follow SOQL: text is compared without regard to case, and a condition on an empty
//! field holds only for `IsNull`/`IsBlank` (and `NotEqualTo` a value).

use crate::logic::Logic;
use herald_expr::{Type as ExprType, Value};
use herald_project::Operator;
use serde_json::{Map, Value as Json};
use std::cmp::Ordering;

#[derive(Clone, Debug)]
pub struct RecordQuery {
    pub object: String,
    pub(crate) filters: Vec<RecordFilter>,
    pub(crate) logic: Logic,
    pub(crate) sort: Option<(String, ExprType, bool)>,
    pub(crate) first_only: bool,
    pub(crate) fields: Option<Vec<String>>,
}

#[derive(Clone, Debug)]
pub(crate) struct RecordFilter {
    pub field: String,
    pub ty: ExprType,
    pub operator: Operator,
    pub right: Value,
    /// `right` of `IsNull`/`IsBlank`: whether the field should be empty.
    pub flag: bool,
}

impl RecordQuery {
    /// The records of `object` whose `field` (of type `field_type`) equals `value` as typed by a
    /// person, judged as a Get Records `EqualTo` condition is (text without regard to case, as
    /// SOQL): the console's search. A value that is not of the field's type is refused.
    pub fn field_equals(
        object: &str,
        field: &str,
        field_type: herald_project::FieldType,
        value: &str,
    ) -> Result<RecordQuery, String> {
        let ty = crate::compile::expr_type(field_type);
        let typed = match ty {
            ExprType::Text => Json::String(value.to_string()),
            _ => {
                serde_json::from_str(value.trim()).unwrap_or_else(|_| Json::String(value.trim().to_string()))
            }
        };
        let right = Value::from_json(&typed, ty).map_err(|error| format!("{field}: {error}"))?;
        Ok(RecordQuery {
            object: object.to_string(),
            filters: vec![RecordFilter {
                field: field.to_string(),
                ty,
                operator: Operator::EqualTo,
                right,
                flag: true,
            }],
            logic: Logic::And,
            sort: None,
            first_only: false,
            fields: None,
        })
    }

    /// Whether a stored record (its fields, `Id` included) is one of the records asked for.
    pub fn matches(&self, record: &Map<String, Json>) -> bool {
        if self.filters.is_empty() {
            return true;
        }
        // Conditions are few: a fixed array avoids an allocation per record read.
        let mut results = [false; 32];
        let results = match results.get_mut(..self.filters.len()) {
            Some(results) => results,
            None => return self.matches_many(record),
        };
        for (result, filter) in results.iter_mut().zip(&self.filters) {
            *result = filter.holds(record);
        }
        self.logic.evaluate(results)
    }

    fn matches_many(&self, record: &Map<String, Json>) -> bool {
        let results: Vec<bool> = self.filters.iter().map(|f| f.holds(record)).collect();
        self.logic.evaluate(&results)
    }

    /// The fields a record must be read with to be judged, sorted and kept; `None`: all of them.
    pub fn fields_read(&self) -> Option<Vec<String>> {
        let mut read = self.fields.clone()?;
        let judged =
            self.filters.iter().map(|f| &f.field).chain(self.sort.as_ref().map(|(field, _, _)| field));
        for field in judged {
            if !read.contains(field) {
                read.push(field.clone());
            }
        }
        Some(read)
    }

    /// Reading can stop at the first match: only the first record is kept and no order is asked for.
    pub fn stops_at_first(&self) -> bool {
        self.first_only && self.sort.is_none()
    }

    /// The part of a matching record worth keeping: the stored fields and the sort field.
    pub fn keep(&self, mut record: Map<String, Json>) -> Map<String, Json> {
        let Some(fields) = &self.fields else { return record };
        let sort_field = self.sort.as_ref().map(|(field, _, _)| field.as_str());
        let mut kept = Map::new();
        for field in fields.iter().map(String::as_str).chain(sort_field) {
            if let Some(value) = record.remove(field) {
                kept.insert(field.to_string(), value);
            }
        }
        kept
    }

    /// The records the element stores, from the kept matches in the order they were read: sorted
    /// (stable, empty values first when ascending, as SOQL's default NULLS FIRST), cut to the first
    /// when only the first is stored, and without a sort field that is not stored.
    pub fn finish(&self, mut records: Vec<Map<String, Json>>) -> Vec<Map<String, Json>> {
        if let Some((field, ty, descending)) = &self.sort {
            let key = |record: &Map<String, Json>| {
                record.get(field).map_or(Value::Null, |v| Value::from_json(v, *ty).unwrap_or(Value::Null))
            };
            let mut keyed: Vec<(Value, Map<String, Json>)> =
                records.into_iter().map(|r| (key(&r), r)).collect();
            keyed.sort_by(|(a, _), (b, _)| {
                let order = order_of(a, b);
                if *descending { order.reverse() } else { order }
            });
            records = keyed.into_iter().map(|(_, r)| r).collect();
        }
        if self.first_only {
            records.truncate(1);
        }
        if let (Some(fields), Some((sort_field, _, _))) = (&self.fields, &self.sort)
            && !fields.contains(sort_field)
        {
            for record in &mut records {
                record.remove(sort_field);
            }
        }
        records
    }
}

fn order_of(a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => compare(a, b).unwrap_or(Ordering::Equal),
    }
}

impl RecordFilter {
    fn holds(&self, record: &Map<String, Json>) -> bool {
        let left = record
            .get(&self.field)
            .map_or(Value::Null, |v| Value::from_json(v, self.ty).unwrap_or(Value::Null));
        let text = |value: &Value| value.to_text().to_lowercase();
        match self.operator {
            Operator::IsNull => left.is_null() == self.flag,
            Operator::IsBlank => left.is_blank() == self.flag,
            Operator::EqualTo => equal(&left, &self.right),
            Operator::NotEqualTo => !equal(&left, &self.right),
            Operator::GreaterThan => compare(&left, &self.right) == Some(Ordering::Greater),
            Operator::LessThan => compare(&left, &self.right) == Some(Ordering::Less),
            Operator::GreaterThanOrEqualTo => {
                matches!(compare(&left, &self.right), Some(Ordering::Greater | Ordering::Equal))
            }
            Operator::LessThanOrEqualTo => {
                matches!(compare(&left, &self.right), Some(Ordering::Less | Ordering::Equal))
            }
            Operator::StartsWith => !left.is_null() && text(&left).starts_with(&text(&self.right)),
            Operator::EndsWith => !left.is_null() && text(&left).ends_with(&text(&self.right)),
            Operator::Contains => !left.is_null() && text(&left).contains(&text(&self.right)),
            // Refused when the flow loads.
            Operator::IsChanged => false,
        }
    }
}

fn equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Text(a), Value::Text(b)) if a.is_ascii() && b.is_ascii() => a.eq_ignore_ascii_case(b),
        (Value::Text(a), Value::Text(b)) => a.to_lowercase() == b.to_lowercase(),
        _ => herald_expr::equals(left, right),
    }
}

fn compare(left: &Value, right: &Value) -> Option<Ordering> {
    match (left, right) {
        (Value::Text(a), Value::Text(b)) => Some(a.to_lowercase().cmp(&b.to_lowercase())),
        _ => herald_expr::compare(left, right),
    }
}

impl RecordQuery {
    /// The query as a trace shows it: `{"object": "Lead", "conditions": ["Phone IsNull false", …]}`.
    pub fn describe(&self) -> Json {
        let conditions: Vec<Json> = self
            .filters
            .iter()
            .map(|f| {
                let right = match f.operator {
                    Operator::IsNull | Operator::IsBlank => f.flag.to_string(),
                    _ => f.right.to_text().to_string(),
                };
                Json::String(format!("{} {:?} {right}", f.field, f.operator))
            })
            .collect();
        let mut described = Map::new();
        described.insert("object".into(), Json::String(self.object.clone()));
        described.insert("conditions".into(), Json::Array(conditions));
        if let Some((field, _, descending)) = &self.sort {
            let order = if *descending { "descending" } else { "ascending" };
            described.insert("sort".into(), Json::String(format!("{field} {order}")));
        }
        described
            .insert("howMany".into(), Json::String(if self.first_only { "first" } else { "all" }.into()));
        Json::Object(described)
    }
}
