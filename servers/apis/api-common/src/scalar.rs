//! Validated scalars: each type's `JsonSchema` states its constraint and its
//! `Deserialize` enforces the same one, so the spec and the server agree.

use schemars::JsonSchema;
use schemars::r#gen::SchemaGenerator;
use schemars::schema::{InstanceType, NumberValidation, Schema, SchemaObject, StringValidation};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An integer of at least 1 (quantities, prices and amounts in minor units).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct PositiveInt(i64);

impl PositiveInt {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for PositiveInt {
    type Error = String;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        if value >= 1 {
            Ok(PositiveInt(value))
        } else {
            Err(format!("must be at least 1, got {value}"))
        }
    }
}

impl From<PositiveInt> for i64 {
    fn from(value: PositiveInt) -> i64 {
        value.0
    }
}

impl fmt::Display for PositiveInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl JsonSchema for PositiveInt {
    // Inlined rather than referenced, so each field shows its own bound and
    // description in the spec.
    fn is_referenceable() -> bool {
        false
    }

    fn schema_name() -> String {
        "PositiveInt".to_string()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::Integer.into()),
            format: Some("int64".to_string()),
            number: Some(Box::new(NumberValidation {
                minimum: Some(1.0),
                ..Default::default()
            })),
            ..Default::default()
        }
        .into()
    }
}

/// Text that is not blank (it has a non-whitespace character), holds at
/// most `MAX` characters, and no NUL character (U+0000), which PostgreSQL
/// text cannot store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NonBlankText<const MAX: usize>(String);

impl<const MAX: usize> NonBlankText<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> TryFrom<String> for NonBlankText<MAX> {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let chars = value.chars().count();
        if value.contains('\0') {
            Err("must not contain the NUL character (\\u0000), which cannot be stored".to_string())
        } else if value.trim().is_empty() {
            Err("must not be blank".to_string())
        } else if chars > MAX {
            Err(format!("must be at most {MAX} characters, got {chars}"))
        } else {
            Ok(NonBlankText(value))
        }
    }
}

impl<const MAX: usize> From<NonBlankText<MAX>> for String {
    fn from(value: NonBlankText<MAX>) -> String {
        value.0
    }
}

impl<const MAX: usize> JsonSchema for NonBlankText<MAX> {
    fn is_referenceable() -> bool {
        false
    }

    fn schema_name() -> String {
        format!("NonBlankText{MAX}")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            string: Some(Box::new(StringValidation {
                min_length: Some(1),
                max_length: Some(MAX as u32),
                // A non-whitespace character, and no NUL anywhere.
                pattern: Some(r"^[^\u0000]*[^\s\u0000][^\u0000]*$".to_string()),
            })),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_int_rejects_zero_and_negatives_with_the_value() {
        let error = serde_json::from_str::<PositiveInt>("0")
            .unwrap_err()
            .to_string();
        assert!(error.contains("must be at least 1, got 0"), "{error}");
        assert!(serde_json::from_str::<PositiveInt>("-5").is_err());
        assert_eq!(serde_json::from_str::<PositiveInt>("7").unwrap().get(), 7);
    }

    #[test]
    fn text_with_a_nul_character_is_refused_saying_so() {
        let error = serde_json::from_str::<NonBlankText<9>>(r#""a\u0000b""#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("NUL character"), "{error}");
    }

    #[test]
    fn non_blank_text_rejects_blank_and_counts_characters_not_bytes() {
        assert!(serde_json::from_str::<NonBlankText<3>>(r#"" \t ""#).is_err());
        assert!(serde_json::from_str::<NonBlankText<3>>(r#""""#).is_err());
        assert_eq!(
            serde_json::from_str::<NonBlankText<3>>(r#""äöü""#)
                .unwrap()
                .as_str(),
            "äöü"
        );
        let error = serde_json::from_str::<NonBlankText<3>>(r#""abcd""#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("at most 3 characters, got 4"), "{error}");
    }
}
