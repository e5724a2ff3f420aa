//! The schema of an activity type's `data`: a small JSON Schema of integer and decimal fields.
//!
//! Values are read as exact decimals (JSON numbers keep their text), never through floating point.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Integer,
    Number,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    pub name: String,
    pub kind: FieldKind,
    pub minimum: Option<Decimal>,
    pub maximum: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataSchema {
    pub fields: Vec<FieldSpec>,
    pub required: Vec<String>,
}

/// Validated data: each present field's exact value.
pub type DataValues = BTreeMap<String, Decimal>;

/// The message of a required data field that is absent.
const REQUIRED: &str = "is required";

/// True when all that is wrong with an event's fields is data fields its type requires and it lacks:
/// the contract answers those as `missing_field`, still naming each.
pub fn only_missing_required(errors: &[FieldError]) -> bool {
    !errors.is_empty()
        && errors
            .iter()
            .all(|e| e.field.starts_with("data.") && e.message == REQUIRED)
}

fn field_error(field: String, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// The longest data field or parameter name: readable in a formula, and well within any column.
pub const IDENTIFIER_MAX_LEN: usize = 64;

/// The most data fields (and required names) one activity type may declare: an event's data is a few
/// measurements, and every event is checked against each.
pub const DATA_FIELDS_MAX: usize = 64;

/// A data field name is a plain identifier, so it can appear in a formula.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= IDENTIFIER_MAX_LEN
}

/// Reads a JSON number (or a decimal string) exactly.
pub fn exact_decimal(value: &Value) -> Option<Decimal> {
    match value {
        Value::Number(n) => {
            let text = n.to_string();
            Decimal::from_str_exact(&text)
                .ok()
                .or_else(|| Decimal::from_scientific(&text).ok())
        }
        Value::String(s) => Decimal::from_str_exact(s.trim()).ok(),
        _ => None,
    }
}

impl DataSchema {
    /// Parses `{"type": "object", "properties": {FIELD: {"type": "integer"|"number", "minimum"?, "maximum"?}},
    /// "required"?: [FIELD…]}`, reporting every problem with its JSON path.
    pub fn parse(schema: &Value) -> Result<DataSchema, Vec<FieldError>> {
        let mut errors = Vec::new();
        let at = |path: &str| format!("data_schema{path}");
        let Some(object) = schema.as_object() else {
            return Err(vec![field_error(at(""), "must be an object")]);
        };
        if object.get("type").and_then(Value::as_str) != Some("object") {
            errors.push(field_error(at(".type"), "must be \"object\""));
        }
        for key in object.keys() {
            if !matches!(key.as_str(), "type" | "properties" | "required") {
                errors.push(field_error(at(&format!(".{key}")), "is not supported"));
            }
        }
        let mut fields = Vec::new();
        match object.get("properties").and_then(Value::as_object) {
            None => errors.push(field_error(at(".properties"), "must be an object of fields")),
            Some(props) if props.is_empty() => {
                errors.push(field_error(at(".properties"), "needs at least one field"))
            }
            Some(props) if props.len() > DATA_FIELDS_MAX => errors.push(field_error(
                at(".properties"),
                format!("at most {DATA_FIELDS_MAX} fields"),
            )),
            Some(props) => {
                for (name, spec) in props {
                    let path = at(&format!(".properties.{name}"));
                    if !is_identifier(name) {
                        errors.push(field_error(
                            path.clone(),
                            "field names are lower-case identifiers",
                        ));
                    }
                    match parse_field(name, spec) {
                        Ok(f) => fields.push(f),
                        Err(message) => errors.push(field_error(path, message)),
                    }
                }
            }
        }
        let mut required = Vec::new();
        match object.get("required") {
            None => {}
            Some(Value::Array(items)) if items.len() > DATA_FIELDS_MAX => errors.push(field_error(
                at(".required"),
                format!("at most {DATA_FIELDS_MAX} names"),
            )),
            Some(Value::Array(items)) => {
                for item in items {
                    match item.as_str() {
                        Some(name) if fields.iter().any(|f| f.name == name) => {
                            required.push(name.to_string())
                        }
                        _ => errors.push(field_error(
                            at(".required"),
                            format!("{item} is not a declared field"),
                        )),
                    }
                }
            }
            Some(_) => errors.push(field_error(at(".required"), "must be an array of field names")),
        }
        if errors.is_empty() {
            Ok(DataSchema { fields, required })
        } else {
            Err(errors)
        }
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Checks an activity's data: known fields only, right kinds, within bounds, required ones present.
    pub fn validate(&self, data: &Map<String, Value>) -> Result<DataValues, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut values = DataValues::new();
        for (name, value) in data {
            let path = format!("data.{name}");
            let Some(spec) = self.field(name) else {
                errors.push(field_error(path, "is not a field of this activity type"));
                continue;
            };
            let Some(number) = exact_decimal_number(value) else {
                errors.push(field_error(path, "must be a number"));
                continue;
            };
            if spec.kind == FieldKind::Integer && !number.fract().is_zero() {
                errors.push(field_error(path, "must be an integer"));
                continue;
            }
            if spec.kind == FieldKind::Integer && !fits_i64(number) {
                errors.push(field_error(path, INTEGER_RANGE));
                continue;
            }
            if spec.minimum.is_some_and(|min| number < min) || spec.maximum.is_some_and(|max| number > max) {
                errors.push(field_error(path, bounds_message(spec)));
                continue;
            }
            values.insert(name.clone(), number);
        }
        for name in &self.required {
            if !data.contains_key(name) {
                errors.push(field_error(format!("data.{name}"), REQUIRED));
            }
        }
        if errors.is_empty() {
            Ok(values)
        } else {
            Err(errors)
        }
    }
}

/// Whether a bound moved only outward: `None` is no bound, so any bound after none narrows.
fn widened(old: Option<Decimal>, new: Option<Decimal>, outward: impl Fn(Decimal, Decimal) -> bool) -> bool {
    match (old, new) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(old), Some(new)) => outward(old, new),
    }
}

impl DataSchema {
    /// Checks that changing this schema to `new` leaves every stored activity's data valid and every
    /// formula's names bound: fields may be added if optional and bounds widened; removing a field,
    /// changing its type, narrowing a bound, or making a field required or optional is refused, naming it.
    pub fn check_change_to(&self, new: &DataSchema) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let at = |name: &str| format!("data_schema.properties.{name}");
        let required = |schema: &DataSchema, name: &str| schema.required.iter().any(|r| r == name);
        for old in &self.fields {
            let Some(field) = new.field(&old.name) else {
                errors.push(field_error(
                    at(&old.name),
                    "cannot be removed: stored activities have it",
                ));
                continue;
            };
            if field.kind != old.kind {
                errors.push(field_error(at(&old.name), "cannot change its type"));
            }
            if !widened(old.minimum, field.minimum, |o, n| n <= o) {
                errors.push(field_error(at(&old.name), "its minimum may only be lowered"));
            }
            if !widened(old.maximum, field.maximum, |o, n| n >= o) {
                errors.push(field_error(at(&old.name), "its maximum may only be raised"));
            }
            match (required(self, &old.name), required(new, &old.name)) {
                (false, true) => errors.push(field_error(
                    at(&old.name),
                    "cannot become required: stored activities may lack it",
                )),
                (true, false) => errors.push(field_error(
                    at(&old.name),
                    "cannot become optional: formulas read it from every activity",
                )),
                _ => {}
            }
        }
        for added in new.fields.iter().filter(|f| self.field(&f.name).is_none()) {
            if required(new, &added.name) {
                errors.push(field_error(
                    at(&added.name),
                    "a new field must be optional: stored activities lack it",
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Grams and points are `i64`: an integer beyond that range is a count no arithmetic on them can carry,
/// so it is refused where it comes in, naming its field, rather than overflowing later.
const INTEGER_RANGE: &str = "must be between -9223372036854775808 and 9223372036854775807";

fn fits_i64(number: Decimal) -> bool {
    i64::try_from(number).is_ok()
}

/// Activity data must be JSON numbers (strings are for admin-entered parameters).
fn exact_decimal_number(value: &Value) -> Option<Decimal> {
    matches!(value, Value::Number(_))
        .then(|| exact_decimal(value))
        .flatten()
}

fn bounds_message(spec: &FieldSpec) -> String {
    match (spec.minimum, spec.maximum) {
        (Some(min), Some(max)) => format!("must be between {min} and {max}"),
        (Some(min), None) => format!("must be at least {min}"),
        (None, Some(max)) => format!("must be at most {max}"),
        (None, None) => String::new(),
    }
}

fn parse_field(name: &str, spec: &Value) -> Result<FieldSpec, String> {
    let object = spec.as_object().ok_or("must be an object")?;
    let kind = match object.get("type").and_then(Value::as_str) {
        Some("integer") => FieldKind::Integer,
        Some("number") => FieldKind::Number,
        _ => return Err("type must be \"integer\" or \"number\"".into()),
    };
    let bound = |key: &str| -> Result<Option<Decimal>, String> {
        match object.get(key) {
            None => Ok(None),
            Some(v) => exact_decimal_number(v)
                .map(Some)
                .ok_or_else(|| format!("{key} must be a number")),
        }
    };
    for key in object.keys() {
        if !matches!(key.as_str(), "type" | "minimum" | "maximum" | "description") {
            return Err(format!("`{key}` is not supported"));
        }
    }
    let (minimum, maximum) = (bound("minimum")?, bound("maximum")?);
    if let (Some(min), Some(max)) = (minimum, maximum) {
        if min > max {
            return Err("minimum is above maximum".into());
        }
    }
    Ok(FieldSpec {
        name: name.to_string(),
        kind,
        minimum,
        maximum,
    })
}

impl FromStr for DataSchema {
    type Err = Vec<FieldError>;
    fn from_str(text: &str) -> Result<DataSchema, Vec<FieldError>> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| vec![field_error("data_schema".into(), format!("not JSON: {e}"))])?;
        DataSchema::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> DataSchema {
        DataSchema::parse(&json!({"type": "object", "properties": {
            "distance_m": {"type": "integer", "minimum": 1, "maximum": 100000},
            "kwh": {"type": "number", "minimum": 0}
        }, "required": ["distance_m"]}))
        .unwrap()
    }

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn valid_data_reads_exact_decimals() {
        let values = schema()
            .validate(&data(json!({"distance_m": 3200, "kwh": 0.1})))
            .unwrap();
        assert_eq!(values["distance_m"], Decimal::from(3200));
        assert_eq!(values["kwh"], Decimal::new(1, 1));
    }

    #[test]
    fn each_problem_names_its_field() {
        let errors = schema()
            .validate(&data(json!({"distance_m": 1.5, "kwh": "3", "speed": 1})))
            .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"data.distance_m"));
        assert!(fields.contains(&"data.kwh"));
        assert!(fields.contains(&"data.speed"));
        let errors = schema()
            .validate(&data(json!({"distance_m": 1000000000})))
            .unwrap_err();
        assert!(errors[0].message.contains("between"));
        let errors = schema().validate(&data(json!({"kwh": 1}))).unwrap_err();
        assert_eq!(errors[0].field, "data.distance_m");
        let errors = schema().validate(&data(json!({"distance_m": -5}))).unwrap_err();
        assert_eq!(errors[0].field, "data.distance_m");
    }

    #[test]
    fn integers_beyond_i64_are_refused_naming_their_field() {
        let unbounded = DataSchema::parse(&json!({"type": "object", "properties": {
            "units": {"type": "integer"}, "kwh": {"type": "number"}}}))
        .unwrap();
        for edge in [i64::MAX, i64::MIN] {
            let values = unbounded.validate(&data(json!({"units": edge}))).unwrap();
            assert_eq!(values["units"], Decimal::from(edge));
        }
        for beyond in [
            json!({"units": 9223372036854775808u64}),
            json!({"units": -9223372036854775809i128}),
            json!({"units": 1e20}),
        ] {
            let errors = unbounded.validate(&data(beyond.clone())).unwrap_err();
            assert_eq!(errors[0].field, "data.units", "{beyond}");
            assert_eq!(errors[0].message, INTEGER_RANGE);
        }
        // A decimal field is evaluated in decimals, whose overflow the formula refuses itself.
        assert!(unbounded.validate(&data(json!({"kwh": 1e20}))).is_ok());
    }

    #[test]
    fn bad_schemas_are_refused() {
        assert!(
            DataSchema::parse(&json!({"type": "object", "properties": {"x": {"type": "string"}}})).is_err()
        );
        assert!(DataSchema::parse(&json!({"type": "object", "properties": {}})).is_err());
        assert!(DataSchema::parse(
            &json!({"type": "object", "properties": {"Bad-Name": {"type": "integer"}}})
        )
        .is_err());
        assert!(DataSchema::parse(
            &json!({"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["y"]})
        )
        .is_err());
        assert!(DataSchema::parse(
            &json!({"type": "object", "properties": {"x": {"type": "integer", "minimum": 5, "maximum": 1}}})
        )
        .is_err());
    }

    fn change(from: Value, to: Value) -> Result<(), Vec<String>> {
        let (old, new) = (DataSchema::parse(&from).unwrap(), DataSchema::parse(&to).unwrap());
        old.check_change_to(&new)
            .map_err(|errors| errors.into_iter().map(|e| e.field).collect())
    }

    fn metro(distance: Value, extra: Value, required: Value) -> Value {
        let mut properties = json!({"distance_m": distance});
        for (k, v) in extra.as_object().unwrap() {
            properties[k] = v.clone();
        }
        json!({"type": "object", "properties": properties, "required": required})
    }

    #[test]
    fn a_schema_may_add_optional_fields_and_widen_bounds() {
        let base = metro(
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
            json!({}),
            json!(["distance_m"]),
        );
        assert_eq!(change(base.clone(), base.clone()), Ok(()));
        let wider = metro(
            json!({"type": "integer", "minimum": 0}),
            json!({"stops": {"type": "integer", "minimum": 1}}),
            json!(["distance_m"]),
        );
        assert_eq!(change(base, wider), Ok(()));
    }

    #[test]
    fn every_other_change_is_refused_naming_the_field() {
        let distance = "data_schema.properties.distance_m";
        let base = metro(
            json!({"type": "integer", "minimum": 1, "maximum": 1000}),
            json!({"kwh": {"type": "number"}}),
            json!(["distance_m"]),
        );
        let cases = [
            // removed
            (
                json!({"type": "object", "properties": {"kwh": {"type": "number"}}}),
                distance,
            ),
            // type changed
            (
                metro(
                    json!({"type": "number", "minimum": 1, "maximum": 1000}),
                    json!({"kwh": {"type": "number"}}),
                    json!(["distance_m"]),
                ),
                distance,
            ),
            // minimum raised, maximum lowered, a bound where there was none
            (
                metro(
                    json!({"type": "integer", "minimum": 2, "maximum": 1000}),
                    json!({"kwh": {"type": "number"}}),
                    json!(["distance_m"]),
                ),
                distance,
            ),
            (
                metro(
                    json!({"type": "integer", "minimum": 1, "maximum": 999}),
                    json!({"kwh": {"type": "number"}}),
                    json!(["distance_m"]),
                ),
                distance,
            ),
            (
                metro(
                    json!({"type": "integer", "minimum": 1, "maximum": 1000}),
                    json!({"kwh": {"type": "number", "maximum": 5}}),
                    json!(["distance_m"]),
                ),
                "data_schema.properties.kwh",
            ),
            // made required, made optional
            (
                metro(
                    json!({"type": "integer", "minimum": 1, "maximum": 1000}),
                    json!({"kwh": {"type": "number"}}),
                    json!(["distance_m", "kwh"]),
                ),
                "data_schema.properties.kwh",
            ),
            (
                metro(
                    json!({"type": "integer", "minimum": 1, "maximum": 1000}),
                    json!({"kwh": {"type": "number"}}),
                    json!([]),
                ),
                distance,
            ),
            // a new field that is required
            (
                metro(
                    json!({"type": "integer", "minimum": 1, "maximum": 1000}),
                    json!({"kwh": {"type": "number"}, "stops": {"type": "integer"}}),
                    json!(["distance_m", "stops"]),
                ),
                "data_schema.properties.stops",
            ),
        ];
        for (to, field) in cases {
            assert_eq!(
                change(base.clone(), to.clone()),
                Err(vec![field.to_string()]),
                "{to}"
            );
        }
    }
}
